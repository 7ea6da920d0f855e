using Palisade.Kernel.Drivers;
using Palisade.Kernel.Drivers.Verification;

namespace Palisade.Cli.Tests;

/// <summary>
/// <c>palisade driver verify</c> and <c>palisade driver sign</c> with the driver verifier: verify checks a package
/// before it is signed and prints every finding; sign refuses what the protected flavor would refuse at load unless
/// told <c>--unverified</c>.
/// </summary>
public sealed class DriverVerifyCommandTests : IDisposable
{
    private const string UnverifiableProject = "Palisade.TestDrivers.Unverifiable";

    private readonly PackageWorkspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    private string KeyPath => Path.Combine(_workspace.Root, "vendor.key");

    private string UnverifiablePackage() => _workspace.CreatePackage(UnverifiableProject,
        PackageWorkspace.Manifest("Palisade.TestDrivers.Unverifiable.KernelByNameDriver", UnverifiableProject + ".dll"));

    [Fact]
    public void Verify_of_an_unsigned_package_with_verified_code_exits_0_and_says_it_is_not_signed_yet()
    {
        ProcessResult result = ProcessRunner.Palisade("driver", "verify", _workspace.CreatePackage(), "--home", _workspace.Home);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("result:  unsigned: not signed yet", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("code:    verified: 2 assemblies, no finding", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_prints_every_finding_of_an_unverifiable_package_on_stderr_with_exit_code_2()
    {
        string package = UnverifiablePackage();
        Assert.True(DriverPackage.TryRead(package, out DriverPackage? snapshot, out _));
        int findings = DriverVerifier.Verify(snapshot).Findings.Count;

        ProcessResult result = ProcessRunner.Palisade("driver", "verify", package, "--home", _workspace.Home);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"code:    refused: {findings} verifier findings in 1 assemblies", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(findings, result.Stderr.Split('\n').Count(l => l.StartsWith($"  {UnverifiableProject}.dll: refused: ", StringComparison.Ordinal)));
        Assert.Contains("refused: System.Reflection.FieldInfo.SetValue in PrivateReflection.Patch (rule PV002 private reflection)", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Sign_refuses_a_package_the_verifier_refuses_and_writes_no_signature()
    {
        Assert.Equal(0, ProcessRunner.Palisade("driver", "keygen", "--out", KeyPath).ExitCode);
        string package = UnverifiablePackage();

        ProcessResult result = ProcessRunner.Palisade("driver", "sign", package, "--key", KeyPath);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("not signed: the driver verifier refuses", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("(rule PV013 assembly loading)", result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(package, DriverPackage.SignatureFileName)));
    }

    [Fact]
    public void Sign_with_unverified_signs_a_package_only_the_compat_flavor_will_load()
    {
        Assert.Equal(0, ProcessRunner.Palisade("driver", "keygen", "--out", KeyPath).ExitCode);
        string package = UnverifiablePackage();

        ProcessResult result = ProcessRunner.Palisade("driver", "sign", package, "--key", KeyPath, "--unverified");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("unverified: ", result.Stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(package, DriverPackage.SignatureFileName)));
    }
}
