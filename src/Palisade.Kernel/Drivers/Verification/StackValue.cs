// The abstract values of the IL type checker: what an evaluation-stack slot, local or argument holds, in the terms of
// ECMA-335's verification types, plus what the checker tracks beyond them (read-only references, references into the
// method's own frame, constants for the compiler's inline-array idioms).
using System.Reflection;

namespace Palisade.Kernel.Drivers.Verification;

/// <summary>The verification type of a value.</summary>
internal enum ValueKind : byte
{
    /// <summary>int32 (and bool, char, the small integers, enums over them).</summary>
    Int32,

    /// <summary>int64.</summary>
    Int64,

    /// <summary>native int: a number, never an address.</summary>
    NativeInt,

    /// <summary>A floating-point number.</summary>
    Float,

    /// <summary>An object reference of a known static type (or one of several, after a merge).</summary>
    Object,

    /// <summary>The null reference.</summary>
    Null,

    /// <summary>A managed reference (&amp;) to a location of a known type.</summary>
    ByRef,

    /// <summary>A value of a struct type or a generic parameter.</summary>
    Value,

    /// <summary>A method pointer from ldftn or ldvirtftn, only for a delegate constructor.</summary>
    MethodPointer,
}

/// <summary>What the checker knows of a value beyond its type.</summary>
[Flags]
internal enum ValueFlags : ushort
{
    None = 0,

    /// <summary>A reference through which nothing may be written.</summary>
    ReadOnly = 1,

    /// <summary>The value may refer into this method's own frame (a reference, or a ref struct holding one).</summary>
    MayReferToFrame = 2,

    /// <summary>A reference that certainly points into this method's frame (a local or an argument).</summary>
    InFrame = 4,

    /// <summary>A reference to a location whose value may refer into this frame.</summary>
    PointeeMayReferToFrame = 8,

    /// <summary>An object this method created and has not yet stored (object initializers).</summary>
    Fresh = 16,

    /// <summary>An int32 whose value is known (<see cref="StackValue.Constant"/>).</summary>
    Constant = 32,

    /// <summary>A reference to a static field with RVA data (<see cref="StackValue.Field"/>).</summary>
    RvaStatic = 64,
}

/// <summary>One abstract value.</summary>
internal readonly record struct StackValue(ValueKind Kind, Type? Type, ValueFlags Flags = ValueFlags.None)
{
    /// <summary>More static types the object may have, after branches merged different ones.</summary>
    public Type[]? Alternatives { get; init; }

    /// <summary>For <see cref="ValueFlags.Constant"/>: the value.</summary>
    public int Constant { get; init; }

    /// <summary>For a reference into the frame: the slot (locals from 0, arguments after them), or -1.</summary>
    public int Slot { get; init; } = -1;

    /// <summary>For a method pointer: the method.</summary>
    public MethodBase? Method { get; init; }

    /// <summary>For <see cref="ValueFlags.RvaStatic"/>: the field.</summary>
    public FieldInfo? Field { get; init; }

    public bool Has(ValueFlags flag) => (Flags & flag) != 0;

    public static StackValue Int32() => new(ValueKind.Int32, null);

    public static StackValue ConstantInt32(int value) => new(ValueKind.Int32, null, ValueFlags.Constant) { Constant = value };

    public static StackValue Null() => new(ValueKind.Null, null);

    /// <summary>Every static type the object may have.</summary>
    public IEnumerable<Type> ObjectTypes()
    {
        if (Type is not null)
        {
            yield return Type;
        }

        if (Alternatives is not null)
        {
            foreach (Type t in Alternatives)
            {
                yield return t;
            }
        }
    }

    public override string ToString() => Kind switch
    {
        ValueKind.Object => "a reference to " + ReferenceJudge.NameOf(Type!),
        ValueKind.ByRef => (Has(ValueFlags.ReadOnly) ? "a read-only reference to " : "a reference to ") + ReferenceJudge.NameOf(Type!),
        ValueKind.Value => "a value of " + ReferenceJudge.NameOf(Type!),
        ValueKind.NativeInt => "a native integer",
        ValueKind.Int32 => "an int32",
        ValueKind.Int64 => "an int64",
        ValueKind.Float => "a floating-point number",
        ValueKind.Null => "null",
        _ => "a method pointer",
    };
}
