// The verifier's view of types: a MetadataLoadContext over the package's assemblies (from their verified bytes), the
// kernel's Palisade.Api and the runtime's own base library. A MetadataLoadContext reads metadata only: nothing of a
// driver is loaded for execution or run. It answers the type questions (base types, interfaces, assignability with
// variance, generic substitution, type forwarders); resolving the tokens of one assembly's IL to those types is done
// here with System.Reflection.Metadata, because a MetadataLoadContext does not resolve tokens itself.
using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using System.Runtime.InteropServices;
using Palisade.Api;

namespace Palisade.Kernel.Drivers.Verification;

/// <summary>Where a type comes from, which decides how the verifier judges it.</summary>
internal enum AssemblyOrigin
{
    /// <summary>An assembly of the package: its code is verified with the same rules.</summary>
    Package,

    /// <summary>The kernel's Palisade.Api: the contract, usable in full.</summary>
    Api,

    /// <summary>The .NET base library of the runtime the kernel runs on: usable as far as the allowlist says.</summary>
    BaseLibrary,

    /// <summary>Anything else: not part of the driver contract.</summary>
    Foreign,
}

/// <summary>A MetadataLoadContext over one package, with the kernel's API and the runtime's base library.</summary>
internal sealed class VerifierUniverse : IDisposable
{
    private static readonly string RuntimeDirectory = RuntimeEnvironment.GetRuntimeDirectory();
    private static readonly string ApiPath = typeof(IDriver).Assembly.Location;

    private readonly MetadataLoadContext _context;
    private readonly Dictionary<string, byte[]> _packageImages;
    private readonly HashSet<Assembly> _package = [];
    private readonly Dictionary<string, Type> _coreTypes = new(StringComparer.Ordinal);

    /// <param name="packageImages">The package's assemblies (simple name to image bytes).</param>
    public VerifierUniverse(Dictionary<string, byte[]> packageImages)
    {
        _packageImages = packageImages;
        _context = new MetadataLoadContext(new Resolver(this));
    }

    // The base library's assemblies by simple name. Case-insensitive, as a driver's load context matches names: a
    // package assembly named "system.runtime" would stand in for System.Runtime.
    private static readonly Lazy<Dictionary<string, string>> BaseLibrary = new(() =>
    {
        var paths = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (string path in Directory.EnumerateFiles(RuntimeDirectory, "*.dll"))
        {
            paths.TryAdd(Path.GetFileNameWithoutExtension(path), path);
        }

        return paths;
    });

    /// <summary>True when <paramref name="name"/> names an assembly of the runtime's base library, in any case.</summary>
    public static bool IsBaseLibraryName(string name) => BaseLibrary.Value.ContainsKey(name);

    /// <summary>Loads an assembly of the universe (the package's, the API, the base library) by name.</summary>
    /// <exception cref="FileNotFoundException">No such assembly is available to drivers.</exception>
    public Assembly Load(AssemblyName name) => _context.LoadFromAssemblyName(name);

    /// <summary>Where an assembly of this universe comes from.</summary>
    public AssemblyOrigin OriginOf(Assembly assembly)
    {
        if (_package.Contains(assembly))
        {
            return AssemblyOrigin.Package;
        }

        string location = assembly.Location;
        if (string.Equals(location, ApiPath, StringComparison.Ordinal))
        {
            return AssemblyOrigin.Api;
        }

        return location.StartsWith(RuntimeDirectory, StringComparison.Ordinal) ? AssemblyOrigin.BaseLibrary : AssemblyOrigin.Foreign;
    }

    /// <summary>A type of the core library by full name (System.Int32, System.Object...).</summary>
    public Type Core(string fullName)
    {
        if (!_coreTypes.TryGetValue(fullName, out Type? type))
        {
            type = _context.CoreAssembly!.GetType(fullName, throwOnError: true)!;
            _coreTypes.Add(fullName, type);
        }

        return type;
    }

    public void Dispose() => _context.Dispose();

    private sealed class Resolver(VerifierUniverse universe) : MetadataAssemblyResolver
    {
        public override Assembly? Resolve(MetadataLoadContext context, AssemblyName assemblyName)
        {
            string? name = assemblyName.Name;
            if (name is null)
            {
                return null;
            }

            if (universe._packageImages.TryGetValue(name, out byte[]? image))
            {
                Assembly assembly = context.LoadFromByteArray(image);
                universe._package.Add(assembly);
                return assembly;
            }

            if (string.Equals(name, DriverAssemblyCheck.ApiAssemblyName, StringComparison.OrdinalIgnoreCase))
            {
                return context.LoadFromAssemblyPath(ApiPath);
            }

            return BaseLibrary.Value.TryGetValue(name, out string? path) ? context.LoadFromAssemblyPath(path) : null;
        }
    }
}

/// <summary>The generic arguments in scope where a signature is decoded: the type's and the method's.</summary>
internal readonly record struct GenericScope(Type[] TypeArguments, Type[] MethodArguments)
{
    public static readonly GenericScope None = new([], []);

    /// <summary>The scope inside a method's body: its type's and its own generic parameters.</summary>
    public static GenericScope Of(MethodBase method)
    {
        Type[] typeArguments = method.DeclaringType is { } type && type.IsGenericType ? type.GetGenericArguments() : [];
        Type[] methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : [];
        return new GenericScope(typeArguments, methodArguments);
    }

    /// <summary>The scope of a type's own signatures (fields, base types).</summary>
    public static GenericScope Of(Type type) => new(type.IsGenericType ? type.GetGenericArguments() : [], []);
}

/// <summary>A reference that does not resolve to a type or member of the universe.</summary>
internal sealed class UnresolvedReferenceException(string message) : Exception(message);

/// <summary>
/// Resolves the metadata tokens and signatures of one package assembly to the universe's types and members.
/// </summary>
internal sealed class ModuleResolver : ISignatureTypeProvider<Type, GenericScope>
{
    private readonly VerifierUniverse _universe;
    private readonly Dictionary<TypeDefinitionHandle, Type> _types = [];
    private readonly Dictionary<int, MemberInfo> _members = [];
    private readonly Dictionary<TypeDefinitionHandle, bool> _membersIndexed = [];

    public ModuleResolver(VerifierUniverse universe, Assembly assembly, PEReader image)
    {
        _universe = universe;
        Assembly = assembly;
        Image = image;
        Reader = image.GetMetadataReader();
        foreach (Type type in assembly.GetTypes())
        {
            _types[(TypeDefinitionHandle)MetadataTokens.EntityHandle(type.MetadataToken)] = type;
        }

        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (MethodInfo method in assembly.ManifestModule.GetMethods(all))
        {
            _members[method.MetadataToken] = method;
        }

        foreach (FieldInfo field in assembly.ManifestModule.GetFields(all))
        {
            _members[field.MetadataToken] = field;
        }

        _membersIndexed[GlobalType] = true;
    }

    private static readonly TypeDefinitionHandle GlobalType = MetadataTokens.TypeDefinitionHandle(1);

    /// <summary>True for the &lt;Module&gt; type, which holds global fields and methods and is no Type of its own.</summary>
    public static bool IsGlobalType(TypeDefinitionHandle handle) => handle == GlobalType;

    public Assembly Assembly { get; }

    /// <summary>The assembly's image, for method bodies.</summary>
    public PEReader Image { get; }

    public MetadataReader Reader { get; }

    public VerifierUniverse Universe => _universe;

    /// <summary>The type a TypeDef, TypeRef or TypeSpec names.</summary>
    /// <exception cref="UnresolvedReferenceException">The reference does not resolve.</exception>
    public Type ResolveType(EntityHandle handle, GenericScope scope)
    {
        try
        {
            return handle.Kind switch
            {
                HandleKind.TypeDefinition => TypeOf((TypeDefinitionHandle)handle),
                HandleKind.TypeReference => ResolveTypeReference((TypeReferenceHandle)handle),
                HandleKind.TypeSpecification => Reader.GetTypeSpecification((TypeSpecificationHandle)handle).DecodeSignature(this, scope),
                _ => throw new UnresolvedReferenceException($"a {handle.Kind} is not a type"),
            };
        }
        catch (Exception e) when (e is FileNotFoundException or TypeLoadException or BadImageFormatException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            throw new UnresolvedReferenceException($"{DescribeType(handle)} does not resolve: {e.Message}");
        }
    }

    /// <summary>A defined type of this assembly.</summary>
    public Type TypeOf(TypeDefinitionHandle handle) =>
        _types.TryGetValue(handle, out Type? type) ? type : throw new UnresolvedReferenceException("a type definition of the assembly is missing");

    /// <summary>The method or field a MethodDef, FieldDef, MemberRef or MethodSpec names.</summary>
    /// <exception cref="UnresolvedReferenceException">The reference does not resolve.</exception>
    public MemberInfo ResolveMember(EntityHandle handle, GenericScope scope)
    {
        try
        {
            return handle.Kind switch
            {
                HandleKind.MethodDefinition or HandleKind.FieldDefinition => DefinedMember(handle),
                HandleKind.MemberReference => ResolveMemberReference((MemberReferenceHandle)handle, scope),
                HandleKind.MethodSpecification => ResolveMethodSpecification((MethodSpecificationHandle)handle, scope),
                _ => throw new UnresolvedReferenceException($"a {handle.Kind} is not a method or field"),
            };
        }
        catch (Exception e) when (e is FileNotFoundException or TypeLoadException or BadImageFormatException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            throw new UnresolvedReferenceException($"{DescribeMember(handle)} does not resolve: {e.Message}");
        }
    }

    /// <summary>A method or field defined in this assembly.</summary>
    public MemberInfo DefinedMember(EntityHandle handle)
    {
        int token = MetadataTokens.GetToken(handle);
        if (_members.TryGetValue(token, out MemberInfo? member))
        {
            return member;
        }

        TypeDefinitionHandle declaring = handle.Kind == HandleKind.MethodDefinition
            ? Reader.GetMethodDefinition((MethodDefinitionHandle)handle).GetDeclaringType()
            : Reader.GetFieldDefinition((FieldDefinitionHandle)handle).GetDeclaringType();
        if (!_membersIndexed.ContainsKey(declaring))
        {
            _membersIndexed[declaring] = true;
            const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (MemberInfo m in TypeOf(declaring).GetMembers(all))
            {
                if (m is MethodBase or FieldInfo)
                {
                    _members[m.MetadataToken] = m;
                }
            }
        }

        return _members.TryGetValue(token, out member) ? member : throw new UnresolvedReferenceException("a member definition of the assembly is missing");
    }

    /// <summary>A readable name for a type reference, without resolving it.</summary>
    public string DescribeType(EntityHandle handle)
    {
        switch (handle.Kind)
        {
            case HandleKind.TypeDefinition:
                TypeDefinition definition = Reader.GetTypeDefinition((TypeDefinitionHandle)handle);
                string outer = definition.GetDeclaringType().IsNil ? Reader.GetString(definition.Namespace) : DescribeType(definition.GetDeclaringType());
                return Join(outer, Reader.GetString(definition.Name));
            case HandleKind.TypeReference:
                TypeReference reference = Reader.GetTypeReference((TypeReferenceHandle)handle);
                string scope = reference.ResolutionScope.Kind == HandleKind.TypeReference
                    ? DescribeType((TypeReferenceHandle)reference.ResolutionScope)
                    : Reader.GetString(reference.Namespace);
                return Join(scope, Reader.GetString(reference.Name));
            default:
                return "a generic or array type";
        }

        static string Join(string left, string right) => left.Length == 0 ? right : left + "." + right;
    }

    /// <summary>A readable name for a member reference, without resolving it.</summary>
    public string DescribeMember(EntityHandle handle)
    {
        switch (handle.Kind)
        {
            case HandleKind.MethodDefinition:
                MethodDefinition method = Reader.GetMethodDefinition((MethodDefinitionHandle)handle);
                return DescribeType(method.GetDeclaringType()) + "." + Reader.GetString(method.Name);
            case HandleKind.FieldDefinition:
                FieldDefinition field = Reader.GetFieldDefinition((FieldDefinitionHandle)handle);
                return DescribeType(field.GetDeclaringType()) + "." + Reader.GetString(field.Name);
            case HandleKind.MemberReference:
                MemberReference member = Reader.GetMemberReference((MemberReferenceHandle)handle);
                string parent = member.Parent.Kind is HandleKind.TypeDefinition or HandleKind.TypeReference ? DescribeType(member.Parent) : "(generic)";
                return parent + "." + Reader.GetString(member.Name);
            case HandleKind.MethodSpecification:
                return DescribeMember(Reader.GetMethodSpecification((MethodSpecificationHandle)handle).Method);
            default:
                return handle.Kind.ToString();
        }
    }

    private Type ResolveTypeReference(TypeReferenceHandle handle)
    {
        TypeReference reference = Reader.GetTypeReference(handle);
        string name = Reader.GetString(reference.Name);
        string ns = Reader.GetString(reference.Namespace);
        EntityHandle scope = reference.ResolutionScope;
        switch (scope.Kind)
        {
            case HandleKind.TypeReference:
                Type outer = ResolveTypeReference((TypeReferenceHandle)scope);
                return outer.GetNestedType(name, BindingFlags.Public | BindingFlags.NonPublic)
                    ?? throw new UnresolvedReferenceException($"{outer.FullName}+{name} does not exist");
            case HandleKind.AssemblyReference:
                AssemblyReference assemblyReference = Reader.GetAssemblyReference((AssemblyReferenceHandle)scope);
                Assembly target;
                try
                {
                    target = _universe.Load(assemblyReference.GetAssemblyName());
                }
                catch (FileNotFoundException)
                {
                    throw new UnresolvedReferenceException($"the assembly {Reader.GetString(assemblyReference.Name)} is not available to drivers");
                }

                string fullName = ns.Length == 0 ? name : ns + "." + name;
                return target.GetType(fullName, throwOnError: false)
                    ?? throw new UnresolvedReferenceException($"{fullName} is not in {target.GetName().Name}");
            case HandleKind.ModuleDefinition:
            case HandleKind.ModuleReference:
                string own = ns.Length == 0 ? name : ns + "." + name;
                return Assembly.GetType(own, throwOnError: false) ?? throw new UnresolvedReferenceException($"{own} is not defined");
            default:
                throw new UnresolvedReferenceException($"{name} has no resolution scope");
        }
    }

    private MemberInfo ResolveMemberReference(MemberReferenceHandle handle, GenericScope scope)
    {
        MemberReference reference = Reader.GetMemberReference(handle);
        string name = Reader.GetString(reference.Name);
        if (reference.Parent.Kind is not (HandleKind.TypeDefinition or HandleKind.TypeReference or HandleKind.TypeSpecification))
        {
            throw new UnresolvedReferenceException($"{name} is a reference through a {reference.Parent.Kind}, which drivers may not use");
        }

        Type parent = ResolveType(reference.Parent, scope);
        var parentScope = new GenericScope(parent.IsGenericType ? parent.GetGenericArguments() : [], []);
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        if (reference.GetKind() == MemberReferenceKind.Field)
        {
            Type fieldType = reference.DecodeFieldSignature(this, parentScope);
            for (Type? t = parent; t is not null; t = t.BaseType)
            {
                foreach (FieldInfo field in t.GetFields(all))
                {
                    if (field.Name == name && field.FieldType.Equals(fieldType))
                    {
                        return field;
                    }
                }
            }

            throw new UnresolvedReferenceException($"{parent.FullName}.{name} is not a field of that type");
        }

        BlobReader blob = Reader.GetBlobReader(reference.Signature);
        SignatureHeader header = blob.ReadSignatureHeader();
        int arity = header.IsGeneric ? blob.ReadCompressedInteger() : 0;
        for (Type? t = parent; t is not null; t = t.BaseType)
        {
            IEnumerable<MethodBase> candidates = name is ".ctor" or ".cctor"
                ? t.GetConstructors(all)
                : t.GetMethods(all);
            foreach (MethodBase candidate in candidates)
            {
                if (candidate.Name != name)
                {
                    continue;
                }

                Type[] methodArguments = candidate.IsGenericMethodDefinition ? candidate.GetGenericArguments() : [];
                if (methodArguments.Length != arity)
                {
                    continue;
                }

                MethodSignature<Type> signature;
                try
                {
                    signature = reference.DecodeMethodSignature(this, parentScope with { MethodArguments = methodArguments });
                }
                catch (BadImageFormatException)
                {
                    continue;
                }

                if (Matches(candidate, signature))
                {
                    return candidate;
                }
            }

            if (name is ".ctor" or ".cctor")
            {
                break;
            }
        }

        throw new UnresolvedReferenceException($"{parent.FullName}.{name} with that signature does not exist");
    }

    private static bool Matches(MethodBase candidate, MethodSignature<Type> signature)
    {
        ParameterInfo[] parameters = candidate.GetParameters();
        int arity = candidate.IsGenericMethodDefinition ? candidate.GetGenericArguments().Length : 0;
        if (parameters.Length != signature.ParameterTypes.Length || arity != signature.GenericParameterCount
            || candidate.IsStatic == signature.Header.IsInstance)
        {
            return false;
        }

        Type returnType = candidate is MethodInfo method ? method.ReturnType : signature.ReturnType;
        if (!returnType.Equals(signature.ReturnType))
        {
            return false;
        }

        for (int i = 0; i < parameters.Length; i++)
        {
            if (!parameters[i].ParameterType.Equals(signature.ParameterTypes[i]))
            {
                return false;
            }
        }

        return true;
    }

    private MethodInfo ResolveMethodSpecification(MethodSpecificationHandle handle, GenericScope scope)
    {
        MethodSpecification specification = Reader.GetMethodSpecification(handle);
        MethodInfo method = ResolveMember(specification.Method, scope) as MethodInfo
            ?? throw new UnresolvedReferenceException("a generic instantiation of something that is not a method");
        ImmutableArray<Type> arguments = specification.DecodeSignature(this, scope);
        return method.MakeGenericMethod([.. arguments]);
    }

    // ISignatureTypeProvider: signatures decode to the universe's types. Modifiers are dropped here; the verifier
    // reads them from the resolved members (GetRequiredCustomModifiers), where they mean something.
    public Type GetPrimitiveType(PrimitiveTypeCode typeCode) => _universe.Core(typeCode switch
    {
        PrimitiveTypeCode.Boolean => "System.Boolean",
        PrimitiveTypeCode.Byte => "System.Byte",
        PrimitiveTypeCode.SByte => "System.SByte",
        PrimitiveTypeCode.Char => "System.Char",
        PrimitiveTypeCode.Int16 => "System.Int16",
        PrimitiveTypeCode.UInt16 => "System.UInt16",
        PrimitiveTypeCode.Int32 => "System.Int32",
        PrimitiveTypeCode.UInt32 => "System.UInt32",
        PrimitiveTypeCode.Int64 => "System.Int64",
        PrimitiveTypeCode.UInt64 => "System.UInt64",
        PrimitiveTypeCode.Single => "System.Single",
        PrimitiveTypeCode.Double => "System.Double",
        PrimitiveTypeCode.IntPtr => "System.IntPtr",
        PrimitiveTypeCode.UIntPtr => "System.UIntPtr",
        PrimitiveTypeCode.Object => "System.Object",
        PrimitiveTypeCode.String => "System.String",
        PrimitiveTypeCode.TypedReference => "System.TypedReference",
        PrimitiveTypeCode.Void => "System.Void",
        _ => throw new BadImageFormatException($"unknown primitive type {typeCode}"),
    });

    public Type GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => TypeOf(handle);

    public Type GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => ResolveTypeReference(handle);

    public Type GetTypeFromSpecification(MetadataReader reader, GenericScope genericContext, TypeSpecificationHandle handle, byte rawTypeKind) =>
        reader.GetTypeSpecification(handle).DecodeSignature(this, genericContext);

    public Type GetSZArrayType(Type elementType) => elementType.MakeArrayType();

    public Type GetArrayType(Type elementType, ArrayShape shape) => elementType.MakeArrayType(shape.Rank);

    public Type GetByReferenceType(Type elementType) => elementType.MakeByRefType();

    public Type GetPointerType(Type elementType) => elementType.MakePointerType();

    // A function pointer has no constructible Type here; the verifier refuses function pointers from the raw
    // signature (SignatureScan), so standing in for one with IntPtr only keeps decoding going.
    public Type GetFunctionPointerType(MethodSignature<Type> signature) => _universe.Core("System.IntPtr");

    public Type GetGenericInstantiation(Type genericType, ImmutableArray<Type> typeArguments) => genericType.MakeGenericType([.. typeArguments]);

    public Type GetGenericMethodParameter(GenericScope genericContext, int index) =>
        index < genericContext.MethodArguments.Length ? genericContext.MethodArguments[index] : throw new BadImageFormatException($"method generic parameter {index} is out of range");

    public Type GetGenericTypeParameter(GenericScope genericContext, int index) =>
        index < genericContext.TypeArguments.Length ? genericContext.TypeArguments[index] : throw new BadImageFormatException($"type generic parameter {index} is out of range");

    public Type GetModifiedType(Type modifier, Type unmodifiedType, bool isRequired) => unmodifiedType;

    public Type GetPinnedType(Type elementType) => elementType;
}
