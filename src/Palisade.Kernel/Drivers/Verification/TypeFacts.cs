// Questions the IL type checker asks about types and members of the verifier's universe: the storage class of a type
// (what ldind/stind may touch it), whether a value of it can hold a reference into a stack frame, whether a
// parameter or method is read-only or scoped, and whether one value may be stored where a type is expected.
using System.Reflection;

namespace Palisade.Kernel.Drivers.Verification;

/// <summary>How a location of a type is read and written by the indirect instructions.</summary>
internal enum Storage : byte
{
    Int8,
    Int16,
    Int32,
    Int64,
    NativeInt,
    Float32,
    Float64,
    Reference,
    Struct,
}

/// <summary>Type facts for the IL type checker.</summary>
internal static class TypeFacts
{
    private const GenericParameterAttributes AllowByRefLike = (GenericParameterAttributes)0x20;

    /// <summary>The storage class of a type; enums count as their underlying type.</summary>
    public static Storage StorageOf(Type type)
    {
        if (type.IsEnum)
        {
            type = type.GetEnumUnderlyingType();
        }

        if (type.IsPointer || type.IsFunctionPointer)
        {
            return Storage.NativeInt;
        }

        if (type.IsGenericParameter || type.IsByRef)
        {
            return Storage.Struct;
        }

        if (type.IsValueType && type.Namespace == "System")
        {
            switch (type.Name)
            {
                case "Boolean" or "Byte" or "SByte":
                    return Storage.Int8;
                case "Char" or "Int16" or "UInt16":
                    return Storage.Int16;
                case "Int32" or "UInt32":
                    return Storage.Int32;
                case "Int64" or "UInt64":
                    return Storage.Int64;
                case "IntPtr" or "UIntPtr":
                    return Storage.NativeInt;
                case "Single":
                    return Storage.Float32;
                case "Double":
                    return Storage.Float64;
            }
        }

        return type.IsValueType ? Storage.Struct : Storage.Reference;
    }

    /// <summary>The stack value a location of the type yields when loaded.</summary>
    public static StackValue ValueOf(Type type)
    {
        if (type.IsByRef)
        {
            return new StackValue(ValueKind.ByRef, type.GetElementType());
        }

        return StorageOf(type) switch
        {
            Storage.Int8 or Storage.Int16 or Storage.Int32 => StackValue.Int32(),
            Storage.Int64 => new StackValue(ValueKind.Int64, null),
            Storage.NativeInt => new StackValue(ValueKind.NativeInt, null),
            Storage.Float32 or Storage.Float64 => new StackValue(ValueKind.Float, null),
            Storage.Reference => new StackValue(ValueKind.Object, type),
            _ => new StackValue(ValueKind.Value, type),
        };
    }

    /// <summary>True when two locations hold the same thing: one type, up to signedness and enum-ness of primitives.</summary>
    public static bool SameStorage(Type a, Type b)
    {
        Storage storage = StorageOf(a);
        if (storage != StorageOf(b))
        {
            return false;
        }

        return storage is not (Storage.Reference or Storage.Struct) || a.Equals(b);
    }

    /// <summary>True when a value of the type may hold a reference into a stack frame: a managed reference, a ref
    /// struct, or a generic parameter that allows ref structs.</summary>
    public static bool CarriesReferences(Type type) =>
        type.IsByRef
        || (type.IsGenericParameter ? (type.GenericParameterAttributes & AllowByRefLike) != 0 : type.IsByRefLike);

    public static bool IsDelegate(Type type)
    {
        for (Type? t = type.BaseType; t is not null; t = t.BaseType)
        {
            if (t.FullName == "System.MulticastDelegate")
            {
                return true;
            }
        }

        return false;
    }

    public static bool HasAttribute(MemberInfo member, string fullName)
    {
        foreach (CustomAttributeData attribute in member.GetCustomAttributesData())
        {
            if (attribute.AttributeType.FullName == fullName)
            {
                return true;
            }
        }

        return false;
    }

    public static bool HasAttribute(ParameterInfo parameter, string fullName)
    {
        foreach (CustomAttributeData attribute in parameter.GetCustomAttributesData())
        {
            if (attribute.AttributeType.FullName == fullName)
            {
                return true;
            }
        }

        return false;
    }

    private static bool HasModifier(Type[] modifiers, string fullName)
    {
        foreach (Type modifier in modifiers)
        {
            if (modifier.FullName == fullName)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True for an <c>in</c> or <c>ref readonly</c> parameter.</summary>
    public static bool IsReadOnlyParameter(ParameterInfo parameter) =>
        parameter.ParameterType.IsByRef
        && ((parameter.IsIn && !parameter.IsOut)
            || HasAttribute(parameter, "System.Runtime.CompilerServices.IsReadOnlyAttribute")
            || HasAttribute(parameter, "System.Runtime.CompilerServices.RequiresLocationAttribute")
            || HasModifier(parameter.GetRequiredCustomModifiers(), "System.Runtime.InteropServices.InAttribute"));

    /// <summary>True for a parameter the callee cannot return or store beyond the call (<c>scoped</c>, or <c>out</c>).</summary>
    public static bool IsScoped(ParameterInfo parameter) =>
        HasAttribute(parameter, "System.Runtime.CompilerServices.ScopedRefAttribute")
        || (parameter.ParameterType.IsByRef && parameter.IsOut && !parameter.IsIn);

    /// <summary>True when a method returns a read-only reference (<c>ref readonly</c>).</summary>
    public static bool ReturnsReadOnly(MethodInfo method) =>
        method.ReturnType.IsByRef
        && (HasModifier(method.ReturnParameter.GetRequiredCustomModifiers(), "System.Runtime.InteropServices.InAttribute")
            || HasAttribute(method.ReturnParameter, "System.Runtime.CompilerServices.IsReadOnlyAttribute"));

    /// <summary>True for an <c>init</c> accessor.</summary>
    public static bool IsInitAccessor(MethodBase method) =>
        method is MethodInfo info && HasModifier(info.ReturnParameter.GetRequiredCustomModifiers(), "System.Runtime.CompilerServices.IsExternalInit");

    /// <summary>True when an instance method of a struct does not write through <c>this</c>: the method or the struct is readonly.</summary>
    public static bool HasReadOnlyThis(MethodBase method) =>
        HasAttribute(method, "System.Runtime.CompilerServices.IsReadOnlyAttribute")
        || (method.DeclaringType is { } type && HasAttribute(type, "System.Runtime.CompilerServices.IsReadOnlyAttribute"));

    /// <summary>True when a struct method may return references into <c>this</c> ([UnscopedRef]).</summary>
    public static bool HasUnscopedThis(MethodBase method) =>
        HasAttribute(method, "System.Diagnostics.CodeAnalysis.UnscopedRefAttribute");

    /// <summary>True when the types are the same definition (generic instantiations of one definition included).</summary>
    public static bool SameDefinition(Type a, Type b)
    {
        Type da = a.IsConstructedGenericType ? a.GetGenericTypeDefinition() : a;
        Type db = b.IsConstructedGenericType ? b.GetGenericTypeDefinition() : b;
        return da.Equals(db);
    }

    /// <summary>True when an object reference of static type <paramref name="from"/> may be stored where
    /// <paramref name="to"/> is expected.</summary>
    public static bool IsAssignable(Type to, Type from)
    {
        if (to.Equals(from))
        {
            return true;
        }

        try
        {
            return to.IsAssignableFrom(from);
        }
        catch (Exception e) when (e is TypeLoadException or FileNotFoundException or NotSupportedException or ArgumentException)
        {
            return false;
        }
    }

    /// <summary>
    /// True when <paramref name="value"/> may be stored in a location of type <paramref name="slot"/> (a local, an
    /// argument, a field, an array element, a return value). References must point to the same type; object
    /// references must be assignable; numbers must be of the location's size class.
    /// </summary>
    public static bool CanStore(StackValue value, Type slot)
    {
        if (slot.IsByRef)
        {
            return value.Kind == ValueKind.ByRef && SameStorage(value.Type!, slot.GetElementType()!);
        }

        switch (StorageOf(slot))
        {
            case Storage.Int8 or Storage.Int16 or Storage.Int32:
                return value.Kind is ValueKind.Int32 or ValueKind.NativeInt;
            case Storage.Int64:
                return value.Kind == ValueKind.Int64;
            case Storage.NativeInt:
                return value.Kind is ValueKind.NativeInt or ValueKind.Int32;
            case Storage.Float32 or Storage.Float64:
                return value.Kind == ValueKind.Float;
            case Storage.Reference:
                if (value.Kind == ValueKind.Null)
                {
                    return true;
                }

                if (value.Kind != ValueKind.Object)
                {
                    return false;
                }

                foreach (Type type in value.ObjectTypes())
                {
                    if (!IsAssignable(slot, type))
                    {
                        return false;
                    }
                }

                return true;
            default:
                return value.Kind == ValueKind.Value && value.Type!.Equals(slot);
        }
    }

    /// <summary>The size in bytes of a static field's data, for the compiler's ReadOnlySpan-over-constant idiom.</summary>
    public static int DataSize(Type type)
    {
        switch (StorageOf(type))
        {
            case Storage.Int8:
                return 1;
            case Storage.Int16:
                return 2;
            case Storage.Int32 or Storage.Float32:
                return 4;
            case Storage.Int64 or Storage.Float64:
                return 8;
            case Storage.Struct:
                return type.StructLayoutAttribute?.Size ?? 0;
            default:
                return 0;
        }
    }
}
