using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.PortableExecutable;
using Palisade.Api;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Drivers.Verification;

namespace Palisade.Kernel.Tests.Drivers;

/// <summary>
/// The driver verifier on real assemblies: the Unverifiable fixture holds one C# violation of each rule C# can
/// express, in a class of its own; the rules only crafted IL can break (a native integer used as an address, type
/// confusion, references into a finished frame, writes to read-only memory, stray method pointers) are tested on
/// assemblies these tests emit with PersistedAssemblyBuilder. The Verifiable fixture is ordinary C#, which must pass.
/// </summary>
public sealed class DriverVerifierTests : IDisposable
{
    private const string UnverifiableProject = "Palisade.TestDrivers.Unverifiable";
    private const string VerifiableProject = "Palisade.TestDrivers.Verifiable";

    private static readonly Lazy<VerificationReport> Unverifiable = new(() => VerifyFolder(PackageWorkspace.FixtureDirectory(UnverifiableProject)));

    private readonly string _scratch = Directory.CreateTempSubdirectory("palisade-verifier-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    private static VerificationReport VerifyFolder(string folder)
    {
        Assert.True(DriverPackage.TryRead(folder, out DriverPackage? package, out string? error), error);
        return DriverVerifier.Verify(package);
    }

    private static void AssertFinding(VerificationReport report, string rule, string member, string location)
    {
        Assert.True(
            report.Findings.Any(f => f.Rule.Id == rule && f.Member.Contains(member, StringComparison.Ordinal) && f.Location == location),
            $"no {rule} finding for {member} in {location}; the findings are:\n{string.Join('\n', report.Findings)}");
    }

    [Theory]
    [InlineData("PV001", "System.Xml.Linq.XElement.Parse", "OutsideAllowlist.Parse")]
    [InlineData("PV002", "System.Reflection.FieldInfo.SetValue", "PrivateReflection.Patch")]
    [InlineData("PV003", "System.Runtime.CompilerServices.UnsafeAccessorAttribute", "UnsafeAccess.Secret")]
    [InlineData("PV004", "System.Runtime.CompilerServices.IgnoresAccessChecksToAttribute", "the assembly")]
    [InlineData("PV005", "a read through a native integer", "Pointers.Peek")]
    [InlineData("PV006", "a function pointer type", "FunctionPointers.Call")]
    [InlineData("PV007", "localloc", "StackAllocation.Sum")]
    [InlineData("PV008", "System.Runtime.CompilerServices.Unsafe.As", "UnsafeClass.Reinterpret")]
    [InlineData("PV009", "System.Runtime.InteropServices.Marshal.AllocHGlobal", "RawMemory.Allocate")]
    [InlineData("PV010", "System.Runtime.InteropServices.MemoryMarshal.Cast", "MarshalViews.View")]
    [InlineData("PV011", "a P/Invoke method", "PInvoke.GetProcessId")]
    [InlineData("PV012", "System.Reflection.Emit.DynamicMethod..ctor", "CodeGeneration.Emit")]
    [InlineData("PV012", "System.Linq.Expressions.Expression.Compile", "CodeGeneration.Compile")]
    [InlineData("PV013", "System.Reflection.Assembly.Load", "KernelByNameDriver.Load")]
    [InlineData("PV014", "System.Environment.Exit", "ProcessControl.Stop")]
    [InlineData("PV015", "System.IO.File.ReadAllText", "FileSystem.Read")]
    [InlineData("PV016", "System.Net.Sockets.Socket..ctor", "Network.Open")]
    [InlineData("PV017", "System.Threading.Thread.Start", "Threads.Start")]
    [InlineData("PV018", "System.Buffers.ArrayPool.get_Shared", "SharedState.Rent")]
    [InlineData("PV019", "explicit field layout", "Overlay")]
    [InlineData("PV021", "a ref field", "RefField.Target")]
    [InlineData("PV024", "TypedReference", "TypedReferences.Of")]
    [InlineData("PV025", "locals not zero-initialized", "UninitializedLocals.Stale")]
    [InlineData("PV017", "a finalizer", "Finalized.Finalize")]
    public void Each_rule_refuses_its_violation_naming_the_member_and_the_method(string rule, string member, string location) =>
        AssertFinding(Unverifiable.Value, rule, member, location);

    [Fact]
    public void A_package_type_named_like_a_base_library_attribute_is_judged_by_its_name()
    {
        // The runtime honours IgnoresAccessChecksToAttribute by name, so defining it is as good as using it.
        AssertFinding(Unverifiable.Value, "PV004", "IgnoresAccessChecksToAttribute (a type of the package named like a base-library type)", "IgnoresAccessChecksToAttribute");
    }

    [Fact]
    public void Ordinary_csharp_passes_without_a_finding()
    {
        VerificationReport report = VerifyFolder(PackageWorkspace.FixtureDirectory(VerifiableProject));

        Assert.True(report.IsClean, string.Join('\n', report.Findings));
        Assert.Equal([VerifiableProject + ".dll"], report.Assemblies);
    }

    [Fact]
    public void A_reference_to_the_kernel_assembly_is_outside_the_driver_contract()
    {
        VerificationReport report = VerifyFolder(PackageWorkspace.FixtureDirectory(PackageWorkspace.KernelReferencingProject));

        AssertFinding(report, "PV027", "the kernel assembly Palisade.Kernel", "the assembly's references");
    }

    [Fact]
    public void A_package_assembly_that_is_not_pure_il_is_refused()
    {
        string folder = Directory.CreateDirectory(Path.Combine(_scratch, "native")).FullName;
        string image = Path.Combine(folder, VerifiableProject + ".dll");
        File.Copy(Path.Combine(PackageWorkspace.FixtureDirectory(VerifiableProject), VerifiableProject + ".dll"), image);
        ClearIlOnly(image);

        AssertFinding(VerifyFolder(folder), "PV026", "not IL-only", "the assembly");
    }

    // The CLI header's flags word: clearing ILOnly is what a mixed-mode (native code) image looks like.
    private static void ClearIlOnly(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        int flagsOffset;
        using (var reader = new PEReader(new MemoryStream(bytes)))
        {
            flagsOffset = reader.PEHeaders.CorHeaderStartOffset + 16;
        }

        bytes[flagsOffset] &= unchecked((byte)~(int)CorFlags.ILOnly);
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public void A_method_body_with_an_undefined_opcode_is_a_finding_not_a_failure_of_the_verifier()
    {
        VerificationReport report = Crafted(type => Method(type, "Garbled", typeof(int), [], il =>
        {
            il.Emit(OpCodes.Ldc_I4, 0x00A6A6A6);
            il.Emit(OpCodes.Ret);
        }));
        string image = Path.Combine(_scratch, "garbled.dll");
        File.Copy(Directory.EnumerateFiles(_scratch, "Crafted.dll", SearchOption.AllDirectories).First(), image);

        // The body is a tiny header, then ldc.i4 (0x20) and its operand A6 A6 A6 00: turn the opcode into 0xA6, which
        // no instruction has.
        byte[] bytes = File.ReadAllBytes(image);
        int at = bytes.AsSpan().IndexOf((byte[])[0x20, 0xA6, 0xA6, 0xA6, 0x00]);
        Assert.True(at > 0);
        bytes[at] = 0xA6;
        string folder = Directory.CreateDirectory(Path.Combine(_scratch, "garbled")).FullName;
        File.WriteAllBytes(Path.Combine(folder, "Crafted.dll"), bytes);
        File.Delete(image);

        Assert.True(report.IsClean, string.Join('\n', report.Findings));
        AssertFinding(VerifyFolder(folder), "PV020", "unknown IL opcode 0xA6", "Code.Garbled");
    }

    [Fact]
    public void A_native_integer_used_as_an_address_is_refused()
    {
        VerificationReport report = Crafted(type => Method(type, "Peek", typeof(long), [], il =>
        {
            il.Emit(OpCodes.Ldc_I8, 0x10000L);
            il.Emit(OpCodes.Conv_I);
            il.Emit(OpCodes.Ldind_I8);
            il.Emit(OpCodes.Ret);
        }));

        AssertFinding(report, "PV005", "ldind.i8 at IL_000A: a read through a native integer", "Code.Peek");
    }

    [Fact]
    public void An_integer_forged_into_an_object_reference_is_refused()
    {
        VerificationReport report = Crafted(type => Method(type, "Forge", typeof(object), [], il =>
        {
            il.Emit(OpCodes.Ldc_I8, 0x7F00_0000_0000L);
            il.Emit(OpCodes.Conv_I);
            il.Emit(OpCodes.Ret);
        }));

        AssertFinding(report, "PV005", "an integer used as System.Object", "Code.Forge");
    }

    [Fact]
    public void An_object_returned_as_another_type_is_refused_as_type_confusion()
    {
        VerificationReport report = Crafted(type => Method(type, "Confuse", typeof(string), [typeof(object)], il =>
        {
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ret);
        }));

        AssertFinding(report, "PV020", "a reference to System.Object where System.String is expected", "Code.Confuse");
    }

    [Fact]
    public void Arithmetic_on_a_managed_reference_is_refused()
    {
        VerificationReport report = Crafted(type => Method(type, "Past", typeof(int), [typeof(int[])], il =>
        {
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldc_I4_0);
            il.Emit(OpCodes.Ldelema, typeof(int));
            il.Emit(OpCodes.Ldc_I4, 4096);
            il.Emit(OpCodes.Add);
            il.Emit(OpCodes.Ldind_I4);
            il.Emit(OpCodes.Ret);
        }));

        AssertFinding(report, "PV005", "arithmetic on a managed reference", "Code.Past");
    }

    [Fact]
    public void A_reference_to_a_local_returned_from_its_method_is_refused()
    {
        VerificationReport report = Crafted(type => Method(type, "Dangle", typeof(int).MakeByRefType(), [], il =>
        {
            il.DeclareLocal(typeof(int));
            il.Emit(OpCodes.Ldloca_S, (byte)0);
            il.Emit(OpCodes.Ret);
        }));

        AssertFinding(report, "PV021", "returns a reference into this method's own frame", "Code.Dangle");
    }

    [Fact]
    public void A_struct_method_returning_a_reference_to_this_is_refused()
    {
        VerificationReport report = Crafted(module =>
        {
            TypeBuilder value = module.DefineType("Crafted.Value", TypeAttributes.Public | TypeAttributes.Sealed | TypeAttributes.SequentialLayout, typeof(ValueType));
            FieldBuilder field = value.DefineField("Field", typeof(int), FieldAttributes.Public);
            MethodBuilder self = value.DefineMethod("Self", MethodAttributes.Public, typeof(int).MakeByRefType(), Type.EmptyTypes);
            ILGenerator il = self.GetILGenerator();
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldflda, field);
            il.Emit(OpCodes.Ret);
            value.CreateType();
        });

        AssertFinding(report, "PV021", "returns a reference into this method's own frame", "Value.Self");
    }

    [Fact]
    public void A_span_over_a_local_returned_from_its_method_is_refused()
    {
        ConstructorInfo overReference = typeof(ReadOnlySpan<int>).GetConstructor([typeof(int).MakeByRefType()])!;
        VerificationReport report = Crafted(type => Method(type, "DangleSpan", typeof(ReadOnlySpan<int>), [], il =>
        {
            il.DeclareLocal(typeof(int));
            il.Emit(OpCodes.Ldloca_S, (byte)0);
            il.Emit(OpCodes.Newobj, overReference);
            il.Emit(OpCodes.Ret);
        }));

        AssertFinding(report, "PV021", "returns a reference into this method's own frame", "Code.DangleSpan");
    }

    [Fact]
    public void A_write_through_an_in_parameter_is_refused()
    {
        VerificationReport report = Crafted(type =>
        {
            MethodBuilder method = Method(type, "Write", typeof(void), [typeof(int).MakeByRefType()], il =>
            {
                il.Emit(OpCodes.Ldarg_0);
                il.Emit(OpCodes.Ldc_I4_1);
                il.Emit(OpCodes.Stind_I4);
                il.Emit(OpCodes.Ret);
            });
            method.DefineParameter(1, ParameterAttributes.In, "value");
        });

        AssertFinding(report, "PV022", "a write through a read-only reference", "Code.Write");
    }

    [Fact]
    public void A_write_to_another_types_readonly_field_is_refused()
    {
        VerificationReport report = Crafted(type => Method(type, "Empty", typeof(void), [], il =>
        {
            il.Emit(OpCodes.Ldstr, "not empty");
            il.Emit(OpCodes.Stsfld, typeof(string).GetField(nameof(string.Empty))!);
            il.Emit(OpCodes.Ret);
        }));

        AssertFinding(report, "PV022", "writes the readonly field System.String.Empty", "Code.Empty");
    }

    [Fact]
    public void An_init_accessor_on_an_object_the_method_did_not_create_is_refused()
    {
        MethodInfo setName = typeof(FilterRegistration).GetProperty(nameof(FilterRegistration.Name))!.SetMethod!;
        VerificationReport report = Crafted(type => Method(type, "Rename", typeof(void), [typeof(FilterRegistration)], il =>
        {
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldstr, "renamed");
            il.Emit(OpCodes.Callvirt, setName);
            il.Emit(OpCodes.Ret);
        }));

        AssertFinding(report, "PV022", "the init accessor Palisade.Api.FilterRegistration.set_Name", "Code.Rename");
    }

    [Fact]
    public void A_method_pointer_that_feeds_no_delegate_is_refused()
    {
        VerificationReport report = Crafted(type =>
        {
            MethodBuilder leak = type.DefineMethod("Leak", MethodAttributes.Public | MethodAttributes.Static, typeof(nint), Type.EmptyTypes);
            ILGenerator il = leak.GetILGenerator();
            il.Emit(OpCodes.Ldftn, leak);
            il.Emit(OpCodes.Ret);
        });

        AssertFinding(report, "PV023", "a method pointer used as the return value", "Code.Leak");
    }

    [Fact]
    public void A_delegate_bound_to_a_method_of_another_signature_is_refused()
    {
        VerificationReport report = Crafted(type =>
        {
            MethodBuilder take = Method(type, "Take", typeof(void), [typeof(string)], il => il.Emit(OpCodes.Ret));
            Method(type, "Bind", typeof(Action<object>), [], il =>
            {
                il.Emit(OpCodes.Ldnull);
                il.Emit(OpCodes.Ldftn, take);
                il.Emit(OpCodes.Newobj, typeof(Action<object>).GetConstructors()[0]);
                il.Emit(OpCodes.Ret);
            });
        });

        AssertFinding(report, "PV023", "Code.Take bound to System.Action: parameter 1 differs", "Code.Bind");
    }

    [Fact]
    public void A_tail_call_is_refused()
    {
        VerificationReport report = Crafted(type =>
        {
            MethodBuilder other = Method(type, "Other", typeof(int), [], il =>
            {
                il.Emit(OpCodes.Ldc_I4_1);
                il.Emit(OpCodes.Ret);
            });
            Method(type, "Jump", typeof(int), [], il =>
            {
                il.Emit(OpCodes.Tailcall);
                il.Emit(OpCodes.Call, other);
                il.Emit(OpCodes.Ret);
            });
        });

        AssertFinding(report, "PV024", "a tail. prefix", "Code.Jump");
    }

    [Fact]
    public void A_reference_to_an_assembly_outside_the_package_and_the_base_library_is_refused_and_left_unresolved()
    {
        VerificationReport report = Crafted(type => Method(type, "Check", typeof(void), [], il =>
        {
            il.Emit(OpCodes.Ldc_I4_1);
            il.Emit(OpCodes.Call, typeof(Assert).GetMethod(nameof(Assert.True), [typeof(bool)])!);
            il.Emit(OpCodes.Ret);
        }));

        AssertFinding(report, "PV027", "the assembly xunit.assert", "the assembly's references");
        AssertFinding(report, "PV028", "xunit.assert", "Code.Check");
    }

    [Fact]
    public void A_package_assembly_named_like_a_base_library_assembly_in_another_case_is_refused()
    {
        // A driver's load context matches assembly names without regard to case, so this one would stand in for
        // System.Linq for every assembly of the package.
        VerificationReport report = Crafted(module => module.DefineType("System.Linq.Enumerable", TypeAttributes.Public).CreateType(), "system.linq");

        AssertFinding(report, "PV027", "the assembly name system.linq, which is a base-library assembly's", "the assembly");
    }

    [Fact]
    public void Every_finding_of_a_package_is_reported_not_only_the_first()
    {
        VerificationReport report = Unverifiable.Value;

        Assert.True(report.Findings.Select(f => f.Location).Distinct().Count() > 20, string.Join('\n', report.Findings));
        Assert.StartsWith($"{UnverifiableProject}.dll: refused: ", report.Summary(), StringComparison.Ordinal);
        Assert.Contains($"(and {report.Findings.Count - 1} more", report.Summary(), StringComparison.Ordinal);
    }

    private static MethodBuilder Method(TypeBuilder type, string name, Type returnType, Type[] parameters, Action<ILGenerator> body)
    {
        MethodBuilder method = type.DefineMethod(name, MethodAttributes.Public | MethodAttributes.Static, returnType, parameters);
        body(method.GetILGenerator());
        return method;
    }

    // An assembly "Crafted" with one type "Code" whose methods the test defines, saved as a package folder.
    private VerificationReport Crafted(Action<TypeBuilder> define) => Crafted(module =>
    {
        TypeBuilder type = module.DefineType("Crafted.Code", TypeAttributes.Public | TypeAttributes.Abstract | TypeAttributes.Sealed);
        define(type);
        type.CreateType();
    });

    private VerificationReport Crafted(Action<ModuleBuilder> define, string name = "Crafted")
    {
        var assembly = new PersistedAssemblyBuilder(new AssemblyName(name), typeof(object).Assembly);
        define(assembly.DefineDynamicModule(name));
        string folder = Directory.CreateDirectory(Path.Combine(_scratch, Guid.NewGuid().ToString("N"))).FullName;
        assembly.Save(Path.Combine(folder, name + ".dll"));
        return VerifyFolder(folder);
    }
}
