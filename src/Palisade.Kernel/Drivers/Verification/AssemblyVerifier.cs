// Verifies one assembly of a package: the image (pure IL, no ReadyToRun code), what it references (assemblies,
// native modules, type forwarders), its custom attributes, every type (layout, base type, interfaces, fields) and
// every method (implementation flags, signature, and the body through MethodVerifier). A last sweep judges every
// type and member reference of the metadata that no use has judged yet, so nothing referenced goes unexamined.
using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace Palisade.Kernel.Drivers.Verification;

/// <summary>Checks one assembly of a package with the verifier's rules.</summary>
internal sealed class AssemblyVerifier
{
    private static readonly string[] DelegateRuntimeMethods = [".ctor", "Invoke", "BeginInvoke", "EndInvoke"];

    private readonly ModuleResolver _resolver;
    private readonly ReferenceJudge _judge;
    private readonly CompilerIdioms _idioms;
    private readonly string _file;
    private readonly IReadOnlyCollection<string> _packageAssemblies;
    private readonly List<VerifierFinding> _findings;
    private readonly SeenReferences _seen;
    private readonly SignatureFlagsProvider _flags;

    /// <param name="resolver">The assembly's resolver.</param>
    /// <param name="judge">The package's judge.</param>
    /// <param name="file">The package path of the assembly, for the findings.</param>
    /// <param name="packageAssemblies">The simple names of every assembly of the package.</param>
    /// <param name="findings">Where findings go.</param>
    public AssemblyVerifier(ModuleResolver resolver, ReferenceJudge judge, string file, IReadOnlyCollection<string> packageAssemblies, List<VerifierFinding> findings)
    {
        _resolver = resolver;
        _judge = judge;
        _idioms = new CompilerIdioms(resolver);
        _file = file;
        _packageAssemblies = packageAssemblies;
        _findings = findings;
        _flags = new SignatureFlagsProvider(resolver.Reader);
        _seen = new SeenReferences(resolver.Reader);
    }

    private MetadataReader Reader => _resolver.Reader;

    public void Verify()
    {
        CheckImage();
        CheckAssemblyReferences();
        for (int row = 1; row <= Reader.GetTableRowCount(TableIndex.ModuleRef); row++)
        {
            ModuleReferenceHandle handle = MetadataTokens.ModuleReferenceHandle(row);
            Report(VerifierRules.PInvoke, "the native library " + Reader.GetString(Reader.GetModuleReference(handle).Name), "the assembly");
        }

        foreach (CustomAttributeHandle handle in Reader.CustomAttributes)
        {
            Guard(DescribeParent(Reader.GetCustomAttribute(handle).Parent), () => CheckAttribute(handle));
        }

        foreach (TypeDefinitionHandle handle in Reader.TypeDefinitions)
        {
            Guard(Reader.GetString(Reader.GetTypeDefinition(handle).Name), () => CheckType(handle));
        }

        CheckForwarders();
        Sweep();
    }

    private void Report(VerifierRule rule, string what, string where) =>
        _findings.Add(new VerifierFinding(rule, what, where, _file));

    private void Report(Judgement? judgement, string where, string context = "")
    {
        if (judgement is { } refused)
        {
            Report(refused.Rule, refused.What + context, where);
        }
    }

    // A reference that does not resolve, or metadata the type system cannot read, is a finding, not a crash.
    private void Guard(string where, Action check)
    {
        try
        {
            check();
        }
        catch (UnresolvedReferenceException e)
        {
            Report(VerifierRules.Unresolved, e.Message, where);
        }
#pragma warning disable CA1031 // The verifier reads untrusted bytes and fails closed: whatever it cannot check is a finding.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Report(VerifierRules.Unresolved, $"metadata or IL the verifier cannot check ({e.GetType().Name}: {e.Message})", where);
        }
    }

    private void CheckImage()
    {
        CorHeader? header = _resolver.Image.PEHeaders.CorHeader;
        if (header is null)
        {
            Report(VerifierRules.NativeImage, "an image without a CLI header", "the assembly");
            return;
        }

        if ((header.Flags & CorFlags.ILOnly) == 0)
        {
            Report(VerifierRules.NativeImage, "an image that is not IL-only (mixed-mode native code)", "the assembly");
        }

        if ((header.Flags & CorFlags.ILLibrary) != 0 || header.ManagedNativeHeaderDirectory.Size != 0)
        {
            Report(VerifierRules.NativeImage, "precompiled native code (ReadyToRun), which the runtime runs instead of the verified IL", "the assembly");
        }

        string name = Reader.GetString(Reader.GetAssemblyDefinition().Name);
        if (VerifierUniverse.IsBaseLibraryName(name))
        {
            Report(VerifierRules.ForeignAssembly, $"the assembly name {name}, which is a base-library assembly's", "the assembly");
        }
    }

    private void CheckAssemblyReferences()
    {
        foreach (AssemblyReferenceHandle handle in Reader.AssemblyReferences)
        {
            string name = Reader.GetString(Reader.GetAssemblyReference(handle).Name);
            if (DriverAssemblyCheck.IsKernelAssembly(name))
            {
                Report(VerifierRules.ForeignAssembly, $"the kernel assembly {name}", "the assembly's references");
            }
            else if (!string.Equals(name, DriverAssemblyCheck.ApiAssemblyName, StringComparison.OrdinalIgnoreCase)
                && !_packageAssemblies.Contains(name) && !VerifierUniverse.IsBaseLibraryName(name))
            {
                Report(VerifierRules.ForeignAssembly, $"the assembly {name}, which is neither in the package, the API nor the base library", "the assembly's references");
            }
        }
    }

    private void CheckAttribute(CustomAttributeHandle handle)
    {
        CustomAttribute attribute = Reader.GetCustomAttribute(handle);
        _seen.Add(attribute.Constructor);
        MemberInfo constructor = _resolver.ResolveMember(attribute.Constructor, GenericScope.None);
        if (constructor.DeclaringType is { } type)
        {
            Report(_judge.JudgeType(type) ?? NamedLikeBaseLibrary(type), DescribeParent(attribute.Parent), " (attribute)");
        }
    }

    // The runtime recognizes some attributes by their name alone, whatever assembly defines them
    // (IgnoresAccessChecksToAttribute, UnsafeAccessorAttribute...): a type of the package in a System or Microsoft
    // namespace is judged by its name, as if it were the base library's. The attributes the compiler embeds
    // (NullableAttribute, EmbeddedAttribute...) are on the allowlist.
    private Judgement? NamedLikeBaseLibrary(Type type)
    {
        if (_judge.Universe.OriginOf(type.Assembly) != AssemblyOrigin.Package
            || type.Namespace is not { } ns || !(ns == "System" || ns.StartsWith("System.", StringComparison.Ordinal) || ns.StartsWith("Microsoft.", StringComparison.Ordinal)))
        {
            return null;
        }

        return BaseLibraryPolicy.JudgeType(ReferenceJudge.DefinitionName(type)) is { } rule ? new Judgement(rule, ReferenceJudge.NameOf(type)) : null;
    }

    private string DescribeParent(EntityHandle parent)
    {
        try
        {
            return parent.Kind switch
            {
                HandleKind.TypeDefinition => Where(_resolver.TypeOf((TypeDefinitionHandle)parent)),
                HandleKind.MethodDefinition or HandleKind.FieldDefinition => Where((MemberInfo)_resolver.DefinedMember(parent)),
                HandleKind.Parameter => "a parameter",
                HandleKind.AssemblyDefinition => "the assembly",
                HandleKind.ModuleDefinition => "the module",
                HandleKind.PropertyDefinition => "a property",
                HandleKind.EventDefinition => "an event",
                HandleKind.GenericParameter => "a generic parameter",
                _ => "the metadata",
            };
        }
        catch (UnresolvedReferenceException)
        {
            return "the metadata";
        }
    }

    /// <summary>A type as findings name the place: outer types and name, no namespace, no arity.</summary>
    public static string Where(Type type)
    {
        string name = type.Name;
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        if (tick >= 0)
        {
            name = name[..tick];
        }

        return type.DeclaringType is { } outer ? Where(outer) + "." + name : name;
    }

    /// <summary>A method or field as findings name the place: <c>Type.Member</c>.</summary>
    public static string Where(MemberInfo member) => (member.DeclaringType is { } type ? Where(type) + "." : "") + member.Name;

    private void CheckType(TypeDefinitionHandle handle)
    {
        TypeDefinition definition = Reader.GetTypeDefinition(handle);
        if (ModuleResolver.IsGlobalType(handle))
        {
            // <Module>: global fields and methods (a module initializer is its static constructor).
            foreach (FieldDefinitionHandle field in definition.GetFields())
            {
                Guard("<Module>", () => CheckField(field));
            }

            foreach (MethodDefinitionHandle method in definition.GetMethods())
            {
                Guard("<Module>", () => CheckMethod(method));
            }

            return;
        }

        Type type = _resolver.TypeOf(handle);
        string where = Where(type);
        GenericScope scope = GenericScope.Of(type);
        if (NamedLikeBaseLibrary(type) is { } impostor)
        {
            Report(impostor, where, " (a type of the package named like a base-library type)");
        }

        if ((definition.Attributes & TypeAttributes.LayoutMask) == TypeAttributes.ExplicitLayout && HasInstanceFields(definition))
        {
            // A fieldless explicit struct (the compiler's __StaticArrayInitTypeSize=N) is only a size.
            Report(VerifierRules.ExplicitLayout, "explicit field layout (FieldOffset)", where);
        }

        if (!definition.BaseType.IsNil)
        {
            _seen.Add(definition.BaseType);
            Report(_judge.JudgeType(_resolver.ResolveType(definition.BaseType, scope)), where, " (base type)");
        }

        foreach (InterfaceImplementationHandle implementation in definition.GetInterfaceImplementations())
        {
            EntityHandle @interface = Reader.GetInterfaceImplementation(implementation).Interface;
            _seen.Add(@interface);
            Report(_judge.JudgeType(_resolver.ResolveType(@interface, scope)), where, " (interface)");
        }

        CheckConstraints(definition.GetGenericParameters(), scope, where);
        foreach (FieldDefinitionHandle field in definition.GetFields())
        {
            Guard(where, () => CheckField(field));
        }

        foreach (MethodDefinitionHandle method in definition.GetMethods())
        {
            Guard(where, () => CheckMethod(method));
        }

        foreach (MethodImplementationHandle implementation in definition.GetMethodImplementations())
        {
            // An explicit interface implementation names the interface method it implements; implementing is not
            // calling, so only the interface itself is judged.
            EntityHandle declaration = Reader.GetMethodImplementation(implementation).MethodDeclaration;
            _seen.Add(declaration);
            if (_resolver.ResolveMember(declaration, scope).DeclaringType is { } declaring)
            {
                Report(_judge.JudgeType(declaring), where, " (implemented interface)");
            }
        }
    }

    private bool HasInstanceFields(TypeDefinition definition)
    {
        foreach (FieldDefinitionHandle field in definition.GetFields())
        {
            if ((Reader.GetFieldDefinition(field).Attributes & FieldAttributes.Static) == 0)
            {
                return true;
            }
        }

        return false;
    }

    private void CheckConstraints(GenericParameterHandleCollection parameters, GenericScope scope, string where)
    {
        foreach (GenericParameterHandle parameter in parameters)
        {
            foreach (GenericParameterConstraintHandle constraint in Reader.GetGenericParameter(parameter).GetConstraints())
            {
                EntityHandle type = Reader.GetGenericParameterConstraint(constraint).Type;
                _seen.Add(type);
                Report(_judge.JudgeType(_resolver.ResolveType(type, scope)), where, " (generic constraint)");
            }
        }
    }

    private void CheckField(FieldDefinitionHandle handle)
    {
        FieldDefinition definition = Reader.GetFieldDefinition(handle);
        var field = (FieldInfo)_resolver.DefinedMember(handle);
        string where = Where(field);
        _seen.AddSignatureOf(definition);
        SignatureFlags flags = definition.DecodeSignature(_flags, null);
        ReportSignature(flags, where, "a field");
        if ((flags & SignatureFlags.ByRef) != 0)
        {
            Report(VerifierRules.StackEscape, "a ref field", where);
        }

        Report(_judge.JudgeType(field.FieldType), where, " (field type)");
    }

    private void ReportSignature(SignatureFlags flags, string where, string what)
    {
        if ((flags & SignatureFlags.Pointer) != 0)
        {
            Report(VerifierRules.Pointers, "a pointer type in " + what, where);
        }

        if ((flags & SignatureFlags.FunctionPointer) != 0)
        {
            Report(VerifierRules.FunctionPointers, "a function pointer type in " + what, where);
        }

        if ((flags & SignatureFlags.TypedReference) != 0)
        {
            Report(VerifierRules.UncheckedIl, "System.TypedReference in " + what, where);
        }
    }

    private void CheckMethod(MethodDefinitionHandle handle)
    {
        MethodDefinition definition = Reader.GetMethodDefinition(handle);
        var method = (MethodBase)_resolver.DefinedMember(handle);
        string where = Where(method);
        MethodImplAttributes implementation = definition.ImplAttributes;
        MethodImplAttributes codeType = implementation & MethodImplAttributes.CodeTypeMask;
        if ((definition.Attributes & MethodAttributes.PinvokeImpl) != 0)
        {
            Report(VerifierRules.PInvoke, "a P/Invoke method (DllImport or LibraryImport)", where);
            return;
        }

        bool runtimeDelegateMethod = codeType == MethodImplAttributes.Runtime && method.DeclaringType is { } declaring
            && TypeFacts.IsDelegate(declaring) && Array.IndexOf(DelegateRuntimeMethods, method.Name) >= 0;
        if ((codeType != MethodImplAttributes.IL && !runtimeDelegateMethod)
            || (implementation & (MethodImplAttributes.InternalCall | MethodImplAttributes.Unmanaged)) != 0)
        {
            Report(VerifierRules.PInvoke, "a method implemented by native code or the runtime (not IL)", where);
            return;
        }

        _seen.AddSignatureOf(definition);
        if (IsFinalizer(method))
        {
            Report(VerifierRules.Threads, "a finalizer, which the runtime runs on its finalizer thread", where);
        }

        MethodSignature<SignatureFlags> signature = definition.DecodeSignature(_flags, null);
        if (signature.Header.CallingConvention == SignatureCallingConvention.VarArgs)
        {
            Report(VerifierRules.UncheckedIl, "a varargs method", where);
        }
        else if (signature.Header.CallingConvention != SignatureCallingConvention.Default)
        {
            Report(VerifierRules.FunctionPointers, "an unmanaged calling convention", where);
        }

        ReportSignature(SignatureFlagsProvider.Of(signature), where, "the signature");
        if (method is MethodInfo info)
        {
            Report(_judge.JudgeType(info.ReturnType), where, " (return type)");
        }

        foreach (ParameterInfo parameter in method.GetParameters())
        {
            Report(_judge.JudgeType(parameter.ParameterType), where, " (parameter type)");
        }

        CheckConstraints(definition.GetGenericParameters(), GenericScope.Of(method), where);
        if (definition.RelativeVirtualAddress == 0)
        {
            if ((definition.Attributes & MethodAttributes.Abstract) == 0 && !runtimeDelegateMethod)
            {
                Report(VerifierRules.PInvoke, "a method without a body (extern)", where);
            }

            return;
        }

        if (_idioms.IsKnownHelper(method))
        {
            // The compiler's helper is known; what its body references is accounted for by that.
            foreach (Instruction instruction in IlReader.Decode(_resolver.Image.GetMethodBody(definition.RelativeVirtualAddress).GetILContent()))
            {
                if (instruction.OpCode == ILOpCode.Call)
                {
                    _seen.Add(MetadataTokens.EntityHandle(instruction.Token));
                }
            }

            return;
        }

        MethodBodyBlock body = _resolver.Image.GetMethodBody(definition.RelativeVirtualAddress);
        if (!body.LocalSignature.IsNil)
        {
            _seen.AddSignatureOf(Reader.GetStandaloneSignature(body.LocalSignature));
        }

        new MethodVerifier(_resolver, _judge, _idioms, method, body, _seen, (rule, what) => Report(rule, what, where)).Verify();
        JudgeRemainingTokens(method, body, where);
    }

    // What the type checker did not reach (code after an instruction that stopped it, unreachable code) is still
    // judged by name, in the method that references it.
    private void JudgeRemainingTokens(MethodBase method, MethodBodyBlock body, string where)
    {
        List<Instruction> code;
        try
        {
            code = IlReader.Decode(body.GetILContent());
        }
        catch (BadImageFormatException)
        {
            return;
        }

        GenericScope scope = GenericScope.Of(method);
        foreach (Instruction instruction in code)
        {
            if (instruction.OpCode is not (ILOpCode.Call or ILOpCode.Callvirt or ILOpCode.Newobj or ILOpCode.Ldftn or ILOpCode.Ldvirtftn
                or ILOpCode.Ldfld or ILOpCode.Ldflda or ILOpCode.Stfld or ILOpCode.Ldsfld or ILOpCode.Ldsflda or ILOpCode.Stsfld
                or ILOpCode.Newarr or ILOpCode.Box or ILOpCode.Castclass or ILOpCode.Isinst or ILOpCode.Initobj or ILOpCode.Ldobj
                or ILOpCode.Stobj or ILOpCode.Unbox or ILOpCode.Unbox_any or ILOpCode.Ldelema or ILOpCode.Ldelem or ILOpCode.Stelem))
            {
                continue;
            }

            EntityHandle handle = MetadataTokens.EntityHandle(instruction.Token);
            if (_seen.Contains(handle))
            {
                continue;
            }

            _seen.Add(handle);
            Guard(where, () =>
            {
                Judgement? judgement = handle.Kind is HandleKind.TypeDefinition or HandleKind.TypeReference or HandleKind.TypeSpecification
                    ? _judge.JudgeType(_resolver.ResolveType(handle, scope))
                    : _judge.JudgeMember(_resolver.ResolveMember(handle, scope));
                Report(judgement, where);
            });
        }
    }

    // An override of Object.Finalize: driver code on the runtime's finalizer thread, outside every callback's
    // containment, where an exception ends the process.
    private static bool IsFinalizer(MethodBase method) =>
        method is MethodInfo { Name: "Finalize", IsStatic: false, IsVirtual: true } info && info.GetParameters().Length == 0
        && info.ReturnType.FullName == "System.Void" && method.DeclaringType is { IsValueType: false };

    private void CheckForwarders()
    {
        foreach (ExportedTypeHandle handle in Reader.ExportedTypes)
        {
            ExportedType exported = Reader.GetExportedType(handle);
            string name = Reader.GetString(exported.Namespace) is { Length: > 0 } ns ? ns + "." + Reader.GetString(exported.Name) : Reader.GetString(exported.Name);
            if (!exported.IsForwarder || exported.Implementation.Kind != HandleKind.AssemblyReference)
            {
                continue;
            }

            AssemblyReference target = Reader.GetAssemblyReference((AssemblyReferenceHandle)exported.Implementation);
            Guard("a type forwarder", () =>
            {
                Type? type = _judge.Universe.Load(target.GetAssemblyName()).GetType(name, throwOnError: false);
                if (type is null)
                {
                    Report(VerifierRules.Unresolved, $"{name} forwarded to {Reader.GetString(target.Name)}, which does not define it", "a type forwarder");
                    return;
                }

                Report(_judge.JudgeType(type), "a type forwarder");
            });
        }
    }

    // Every reference of the metadata that no use judged: a reference can matter without a use this verifier knows.
    private void Sweep()
    {
        Type[] objects = Enumerable.Repeat(_judge.Universe.Core("System.Object"), 64).ToArray();
        var scope = new GenericScope(objects, objects);
        void Judge(EntityHandle handle, Func<Judgement?> judge)
        {
            if (_seen.Contains(handle))
            {
                return;
            }

            Guard("the metadata", () =>
            {
                if (judge() is { } refused && !_findings.Exists(f => f.Rule == refused.Rule && f.Member.StartsWith(refused.What, StringComparison.Ordinal)))
                {
                    Report(refused.Rule, refused.What, "the metadata (a reference no method uses)");
                }
            });
        }

        foreach (TypeReferenceHandle handle in Reader.TypeReferences)
        {
            Judge(handle, () => _judge.JudgeType(_resolver.ResolveType(handle, scope)));
        }

        foreach (MemberReferenceHandle handle in Reader.MemberReferences)
        {
            Judge(handle, () => _judge.JudgeMember(_resolver.ResolveMember(handle, scope)));
        }

        for (int row = 1; row <= Reader.GetTableRowCount(TableIndex.TypeSpec); row++)
        {
            TypeSpecificationHandle handle = MetadataTokens.TypeSpecificationHandle(row);
            Judge(handle, () => _judge.JudgeType(_resolver.ResolveType(handle, scope)));
        }
    }
}

/// <summary>
/// The references a use has judged, closed over what they are made of: a member reference's parent and the types of
/// its signature, a generic instantiation's method and arguments, a nested type's outer type. The sweep then judges
/// only references no use reaches.
/// </summary>
internal sealed class SeenReferences : HashSet<EntityHandle>, ISignatureTypeProvider<object?, object?>
{
    private readonly MetadataReader _reader;

    public SeenReferences(MetadataReader reader) => _reader = reader;

    public new bool Add(EntityHandle handle)
    {
        if (handle.IsNil || !base.Add(handle))
        {
            return false;
        }

        switch (handle.Kind)
        {
            case HandleKind.MemberReference:
                MemberReference member = _reader.GetMemberReference((MemberReferenceHandle)handle);
                Add(member.Parent);
                if (member.GetKind() == MemberReferenceKind.Field)
                {
                    member.DecodeFieldSignature(this, null);
                }
                else
                {
                    member.DecodeMethodSignature(this, null);
                }

                break;
            case HandleKind.MethodSpecification:
                MethodSpecification specification = _reader.GetMethodSpecification((MethodSpecificationHandle)handle);
                Add(specification.Method);
                specification.DecodeSignature(this, null);
                break;
            case HandleKind.TypeSpecification:
                _reader.GetTypeSpecification((TypeSpecificationHandle)handle).DecodeSignature(this, null);
                break;
            case HandleKind.TypeReference:
                TypeReference reference = _reader.GetTypeReference((TypeReferenceHandle)handle);
                if (reference.ResolutionScope.Kind == HandleKind.TypeReference)
                {
                    Add(reference.ResolutionScope);
                }

                break;
        }

        return true;
    }

    /// <summary>Marks every type a definition's signature names (a method, a field or a local signature).</summary>
    public void AddSignatureOf(MethodDefinition method) => method.DecodeSignature(this, null);

    public void AddSignatureOf(FieldDefinition field) => field.DecodeSignature(this, null);

    public void AddSignatureOf(StandaloneSignature locals) => locals.DecodeLocalSignature(this, null);

    object? ISimpleTypeProvider<object?>.GetPrimitiveType(PrimitiveTypeCode typeCode) => null;

    object? ISimpleTypeProvider<object?>.GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => null;

    object? ISimpleTypeProvider<object?>.GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind)
    {
        Add(handle);
        return null;
    }

    object? ISignatureTypeProvider<object?, object?>.GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind)
    {
        Add(handle);
        return null;
    }

    object? ISZArrayTypeProvider<object?>.GetSZArrayType(object? elementType) => null;

    object? IConstructedTypeProvider<object?>.GetArrayType(object? elementType, ArrayShape shape) => null;

    object? IConstructedTypeProvider<object?>.GetByReferenceType(object? elementType) => null;

    object? IConstructedTypeProvider<object?>.GetPointerType(object? elementType) => null;

    object? ISignatureTypeProvider<object?, object?>.GetFunctionPointerType(MethodSignature<object?> signature) => null;

    object? IConstructedTypeProvider<object?>.GetGenericInstantiation(object? genericType, ImmutableArray<object?> typeArguments) => null;

    object? ISignatureTypeProvider<object?, object?>.GetGenericMethodParameter(object? genericContext, int index) => null;

    object? ISignatureTypeProvider<object?, object?>.GetGenericTypeParameter(object? genericContext, int index) => null;

    object? ISignatureTypeProvider<object?, object?>.GetModifiedType(object? modifier, object? unmodifiedType, bool isRequired) => null;

    object? ISignatureTypeProvider<object?, object?>.GetPinnedType(object? elementType) => null;
}
