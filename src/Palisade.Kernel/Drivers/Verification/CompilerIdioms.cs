// The C# compiler's own unsafe idioms in safe code, accepted only in their exact compiled shape:
//  * ReadOnlySpan<byte> over constant data ("abc"u8, static ReadOnlySpan<byte> P => [1, 2]): ldsflda of a static field
//    with RVA data, ldc.i4 N, newobj ReadOnlySpan<T>(void*, int) with a byte-sized T and N no larger than the data.
//  * Array and span initializers: ldtoken of an RVA field feeding RuntimeHelpers.InitializeArray or CreateSpan (the
//    runtime checks the sizes).
//  * The <PrivateImplementationDetails> inline-array helpers behind collection expressions and params spans
//    (InlineArrayElementRef, InlineArrayAsReadOnlySpan, ...): their bodies use Unsafe and MemoryMarshal, so a helper is
//    accepted only when its body is exactly the compiler's, and every call passes an inline-array type whose element
//    is the helper's element type and a constant index or length within the array's length.
using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;

namespace Palisade.Kernel.Drivers.Verification;

/// <summary>Recognizes the compiler idioms of one package assembly.</summary>
internal sealed class CompilerIdioms(ModuleResolver resolver)
{
    private const string HelperType = "<PrivateImplementationDetails>";

    // Each helper's compiled body, as the calls it makes between ldarg.0/ldarg.1 and ret.
    private static readonly Dictionary<string, string[]> HelperBodies = new(StringComparer.Ordinal)
    {
        ["InlineArrayAsReadOnlySpan"] = ["Unsafe.AsRef<B>", "Unsafe.As<B,E>", "MemoryMarshal.CreateReadOnlySpan<E>"],
        ["InlineArrayAsSpan"] = ["Unsafe.As<B,E>", "MemoryMarshal.CreateSpan<E>"],
        ["InlineArrayElementRef"] = ["Unsafe.As<B,E>", "Unsafe.Add<E>"],
        ["InlineArrayElementRefReadOnly"] = ["Unsafe.AsRef<B>", "Unsafe.As<B,E>", "Unsafe.Add<E>"],
        ["InlineArrayFirstElementRef"] = ["Unsafe.As<B,E>"],
        ["InlineArrayFirstElementRefReadOnly"] = ["Unsafe.AsRef<B>", "Unsafe.As<B,E>"],
    };

    private readonly Dictionary<MethodBase, bool> _helpers = [];

    /// <summary>True when <paramref name="method"/> is a compiler inline-array helper whose body is the compiler's
    /// exactly (such a body is not verified: it is known).</summary>
    public bool IsKnownHelper(MethodBase method)
    {
        if (method is not MethodInfo { IsStatic: true } info || !HelperBodies.ContainsKey(method.Name)
            || method.DeclaringType is not { Name: HelperType, DeclaringType: null } type || type.Assembly != resolver.Assembly)
        {
            return false;
        }

        MethodInfo definition = info.IsGenericMethod && !info.IsGenericMethodDefinition ? info.GetGenericMethodDefinition() : info;
        if (!_helpers.TryGetValue(definition, out bool known))
        {
            known = BodyIsTheCompilers(definition);
            _helpers[definition] = known;
        }

        return known;
    }

    /// <summary>
    /// True when a call goes to a known inline-array helper. <paramref name="problem"/> then says why this call is not
    /// in bounds, or is null. The stack holds the call's arguments on top.
    /// </summary>
    public bool IsInlineArrayHelper(MethodInfo method, List<StackValue> stack, out string? problem)
    {
        problem = null;
        if (!method.IsGenericMethod || method.IsGenericMethodDefinition || !IsKnownHelper(method))
        {
            return false;
        }

        Type[] arguments = method.GetGenericArguments();
        Type buffer = arguments[0];
        Type element = arguments[1];
        int? length = InlineArrayLength(buffer, element);
        if (length is null)
        {
            problem = $"{method.Name} over {ReferenceJudge.NameOf(buffer)}, which is not an inline array of {ReferenceJudge.NameOf(element)}";
            return true;
        }

        if (method.GetParameters().Length == 1)
        {
            if (length < 1)
            {
                problem = $"{method.Name} over an empty inline array";
            }

            return true;
        }

        StackValue index = stack.Count > 0 ? stack[^1] : default;
        bool isLength = method.Name.Contains("Span", StringComparison.Ordinal);
        if (!index.Has(ValueFlags.Constant) || index.Constant < 0 || (isLength ? index.Constant > length : index.Constant >= length))
        {
            problem = $"{method.Name} with {(index.Has(ValueFlags.Constant) ? index.Constant.ToString(System.Globalization.CultureInfo.InvariantCulture) : "a computed value")} on an inline array of {length}";
        }

        return true;
    }

    /// <summary>True when newobj ReadOnlySpan&lt;T&gt;(void*, int) is the constant-data idiom: the stack holds a
    /// reference to an RVA static of this assembly and a constant length that fits it.</summary>
    public bool IsConstantSpan(MethodBase constructor, List<StackValue> stack)
    {
        if (constructor.DeclaringType is not { IsConstructedGenericType: true } span || span.GetGenericTypeDefinition().FullName != "System.ReadOnlySpan`1"
            || stack.Count < 2)
        {
            return false;
        }

        ParameterInfo[] parameters = constructor.GetParameters();
        if (parameters.Length != 2 || !parameters[0].ParameterType.IsPointer)
        {
            return false;
        }

        StackValue data = stack[^2];
        StackValue length = stack[^1];
        Type element = span.GetGenericArguments()[0];
        return data.Kind == ValueKind.ByRef && data.Has(ValueFlags.RvaStatic) && data.Field is { } field
            && field.DeclaringType?.Assembly == resolver.Assembly
            && length.Has(ValueFlags.Constant) && length.Constant >= 0
            && TypeFacts.StorageOf(element) == Storage.Int8
            && length.Constant <= TypeFacts.DataSize(field.FieldType);
    }

    /// <summary>True when the ldtoken at <paramref name="index"/> names an RVA field of this assembly and feeds
    /// RuntimeHelpers.InitializeArray or RuntimeHelpers.CreateSpan.</summary>
    public bool FeedsArrayInitializer(List<Instruction> code, int index, ModuleResolver module, GenericScope scope)
    {
        if (index + 1 >= code.Count || code[index + 1].OpCode != ILOpCode.Call)
        {
            return false;
        }

        try
        {
            if (module.ResolveMember(MetadataTokens.EntityHandle(code[index].Token), scope) is not FieldInfo field
                || (field.Attributes & FieldAttributes.HasFieldRVA) == 0 || field.DeclaringType?.Assembly != resolver.Assembly)
            {
                return false;
            }

            MemberInfo next = module.ResolveMember(MetadataTokens.EntityHandle(code[index + 1].Token), scope);
            return next.DeclaringType?.FullName == "System.Runtime.CompilerServices.RuntimeHelpers" && next.Name is "InitializeArray" or "CreateSpan";
        }
        catch (UnresolvedReferenceException)
        {
            return false;
        }
    }

    private static int? InlineArrayLength(Type buffer, Type element)
    {
        int? length = null;
        Type definition = buffer.IsConstructedGenericType ? buffer.GetGenericTypeDefinition() : buffer;
        foreach (CustomAttributeData attribute in definition.GetCustomAttributesData())
        {
            if (attribute.AttributeType.FullName == "System.Runtime.CompilerServices.InlineArrayAttribute"
                && attribute.ConstructorArguments.Count == 1 && attribute.ConstructorArguments[0].Value is int value)
            {
                length = value;
            }
        }

        if (length is null || !buffer.IsValueType || buffer.IsGenericParameter)
        {
            return null;
        }

        FieldInfo[] fields = buffer.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        return fields.Length == 1 && fields[0].FieldType.Equals(element) ? length : null;
    }

    private bool BodyIsTheCompilers(MethodInfo definition)
    {
        Type[] generic = definition.GetGenericArguments();
        ParameterInfo[] parameters = definition.GetParameters();
        string[] calls = HelperBodies[definition.Name];
        bool takesInt = calls[^1].StartsWith("Unsafe.Add", StringComparison.Ordinal) || calls[^1].StartsWith("MemoryMarshal", StringComparison.Ordinal);
        if (generic.Length != 2 || parameters.Length != (takesInt ? 2 : 1) || !parameters[0].ParameterType.IsByRef
            || !parameters[0].ParameterType.GetElementType()!.Equals(generic[0])
            || (takesInt && parameters[1].ParameterType.FullName != "System.Int32"))
        {
            return false;
        }

        var handle = (MethodDefinitionHandle)MetadataTokens.EntityHandle(definition.MetadataToken);
        MethodDefinition method = resolver.Reader.GetMethodDefinition(handle);
        if (method.RelativeVirtualAddress == 0)
        {
            return false;
        }

        List<Instruction> code;
        try
        {
            MethodBodyBlock body = resolver.Image.GetMethodBody(method.RelativeVirtualAddress);
            if (!body.LocalSignature.IsNil || body.ExceptionRegions.Length != 0)
            {
                return false;
            }

            code = IlReader.Decode(body.GetILContent());
        }
        catch (BadImageFormatException)
        {
            return false;
        }

        var expected = new List<(ILOpCode Op, string? Call)> { (ILOpCode.Ldarg_0, null) };
        foreach (string call in calls)
        {
            if (takesInt && call == calls[^1])
            {
                expected.Add((ILOpCode.Ldarg_1, null));
            }

            expected.Add((ILOpCode.Call, call));
        }

        expected.Add((ILOpCode.Ret, null));
        if (code.Count != expected.Count)
        {
            return false;
        }

        var scope = new GenericScope([], generic);
        for (int i = 0; i < code.Count; i++)
        {
            if (code[i].OpCode != expected[i].Op)
            {
                return false;
            }

            if (expected[i].Call is { } call && !IsCall(code[i], call, scope, generic))
            {
                return false;
            }
        }

        return true;
    }

    private bool IsCall(Instruction instruction, string expected, GenericScope scope, Type[] generic)
    {
        MethodInfo? callee;
        try
        {
            callee = resolver.ResolveMember(MetadataTokens.EntityHandle(instruction.Token), scope) as MethodInfo;
        }
        catch (UnresolvedReferenceException)
        {
            return false;
        }

        if (callee is null || !callee.IsGenericMethod)
        {
            return false;
        }

        string typeName = callee.DeclaringType?.FullName switch
        {
            "System.Runtime.CompilerServices.Unsafe" => "Unsafe",
            "System.Runtime.InteropServices.MemoryMarshal" => "MemoryMarshal",
            _ => "?",
        };
        string arguments = string.Join(",", callee.GetGenericArguments().Select(a => a.Equals(generic[0]) ? "B" : a.Equals(generic[1]) ? "E" : "?"));
        if ($"{typeName}.{callee.Name}<{arguments}>" != expected)
        {
            return false;
        }

        // The overloads that take an int count in elements; the others (IntPtr, nuint, void*) are not the compiler's.
        ParameterInfo[] parameters = callee.GetParameters();
        return parameters.Length switch
        {
            1 => parameters[0].ParameterType.IsByRef,
            2 => parameters[0].ParameterType.IsByRef && parameters[1].ParameterType.FullName == "System.Int32",
            _ => false,
        };
    }
}
