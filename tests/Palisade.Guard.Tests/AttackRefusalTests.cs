using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Drivers.Verification;

namespace Palisade.Guard.Tests;

/// <summary>
/// The first wall: every attack package in attacks/ is signed with a trusted key, yet the protected flavor refuses it
/// at load because the driver verifier refuses its code, with the rule that catches the attack's technique, naming
/// the member and the method. The compat flavor, which does not verify, still loads them (CompatTests).
/// </summary>
public sealed class AttackRefusalTests
{
    [Theory]
    [InlineData("inline-detour", "PV005", "System.Span..ctor", "Rootkit.Write")]
    [InlineData("stub-cell-swap", "PV005", "a pointer type in a local variable", "Rootkit.CellOf")]
    [InlineData("ssdt-hook", "PV006", "a function pointer type in a local variable", "ServiceTableHookDriver.Install")]
    [InlineData("jit-hook", "PV011", "System.Runtime.InteropServices.NativeLibrary.Load", "JitHookAttack.Install")]
    [InlineData("callback-insert", "PV002", "System.Activator.CreateInstance", "CallbackInsertionDriver.Install")]
    [InlineData("callback-remove", "PV002", "System.Reflection.FieldInfo.SetValue", "Rootkit.SetField")]
    [InlineData("driver-hide", "PV002", "System.Reflection.FieldInfo.GetValue", "Rootkit.FindObject")]
    [InlineData("object-type-hook", "PV006", "a function pointer type in a local variable", "ObjectTypeHookDriver.Install")]
    [InlineData("process-unlink", "PV002", "System.Reflection.FieldInfo.SetValue", "Rootkit.SetField")]
    [InlineData("guard-code-patch", "PV002", "System.Type.GetMethod", "GuardCodePatchDriver.Install")]
    [InlineData("guard-starve", "PV002", "System.Activator.CreateInstance", "GuardStarveDriver.Install")]
    [InlineData("guard-stop", "PV002", "System.Reflection.FieldInfo.SetValue", "Rootkit.SetField")]
    [InlineData("registration-tamper", "PV002", "System.Reflection.FieldInfo.SetValue", "RegistrationTamperDriver.Install")]
    [InlineData("kernel-wiring", "PV002", "System.Reflection.FieldInfo.SetValue", "KernelWiringDriver.Install")]
    [InlineData("latch-forge", "PV002", "System.Reflection.FieldInfo.SetValue", "LatchForgeDriver.Install")]
    [InlineData("deep-detour", "PV002", "System.Type.GetMethod", "DeepDetourDriver.Install")]
    [InlineData("window-borrow", "PV002", "System.Reflection.FieldInfo.SetValue", "WindowBorrowDriver.Install")]
    public void Attack_package_is_refused_at_load_in_the_protected_flavor_with_the_rule_that_catches_it(string package, string rule, string member, string location)
    {
        using var bed = new AttackBed(KernelFlavor.Protected);
        string directory = Path.Combine(Repository.Root, "attacks", "out", package);

        Status status = bed.Kernel.LoadDriverPackage(directory, new Dictionary<string, string>(), out DriverObject? record, out string message);

        Assert.Equal(Status.DriverBlocked, status);
        Assert.Null(record);
        Assert.Null(bed.Kernel.Drivers.Find(package));
        Assert.StartsWith($"the driver verifier refused {package}: ", message, StringComparison.Ordinal);
        Assert.Matches(@"\(rule PV0\d\d [^)]+\)", message);
        Assert.True(DriverPackage.TryRead(directory, out DriverPackage? read, out string? error), error);
        VerificationReport report = DriverVerifier.Verify(read);
        Assert.True(
            report.Findings.Any(f => f.Rule.Id == rule && f.Member.Contains(member, StringComparison.Ordinal) && f.Location == location),
            $"{package}: no {rule} finding for {member} in {location}; the findings are:\n{string.Join('\n', report.Findings)}");
    }
}
