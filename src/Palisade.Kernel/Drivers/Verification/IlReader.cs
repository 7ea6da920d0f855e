// Decodes a method body's IL into instructions (offset, opcode, operand), and scans signatures for the element types
// that are never type-safe (pointers, function pointers, pinned locals, TypedReference).
using System.Collections.Immutable;
using System.Reflection.Metadata;

namespace Palisade.Kernel.Drivers.Verification;

/// <summary>One decoded IL instruction.</summary>
/// <param name="Offset">Its offset in the body.</param>
/// <param name="OpCode">The opcode.</param>
/// <param name="Operand">The immediate operand: a token, a local or argument index, a constant or a branch target
/// (as an absolute offset).</param>
/// <param name="Targets">For <c>switch</c>, the absolute target offsets.</param>
/// <param name="Next">The offset of the next instruction.</param>
internal readonly record struct Instruction(int Offset, ILOpCode OpCode, long Operand, int[]? Targets, int Next)
{
    public int Token => (int)Operand;

    public override string ToString() => $"IL_{Offset:X4} {OpCodeName(OpCode)}";

    public static string OpCodeName(ILOpCode code) => code.ToString().ToLowerInvariant().Replace('_', '.');
}

/// <summary>Decodes IL.</summary>
internal static class IlReader
{
    /// <summary>Decodes a whole body.</summary>
    /// <exception cref="BadImageFormatException">The IL is truncated or has an unknown opcode.</exception>
    public static List<Instruction> Decode(ImmutableArray<byte> il)
    {
        var instructions = new List<Instruction>();
        int i = 0;
        while (i < il.Length)
        {
            int offset = i;
            int code = il[i++];
            if (code == 0xFE)
            {
                Require(il, i, 1);
                code = 0xFE00 | il[i++];
            }

            var opcode = (ILOpCode)code;
            int size = OperandSize(opcode);
            long operand = 0;
            int[]? targets = null;
            if (opcode == ILOpCode.Switch)
            {
                Require(il, i, 4);
                int count = BitConverter.ToInt32(il.AsSpan(i, 4));
                if (count < 0 || count > (il.Length - i - 4) / 4)
                {
                    throw new BadImageFormatException($"IL_{offset:X4}: a switch with {count} targets does not fit the body");
                }

                i += 4;
                int end = i + (4 * count);
                targets = new int[count];
                for (int t = 0; t < count; t++)
                {
                    targets[t] = end + BitConverter.ToInt32(il.AsSpan(i + (4 * t), 4));
                }

                i = end;
                instructions.Add(new Instruction(offset, opcode, 0, targets, i));
                continue;
            }

            Require(il, i, size);
            operand = size switch
            {
                0 => 0,
                1 => IsSignedByte(opcode) ? (sbyte)il[i] : il[i],
                2 => BitConverter.ToUInt16(il.AsSpan(i, 2)),
                4 => BitConverter.ToInt32(il.AsSpan(i, 4)),
                _ => BitConverter.ToInt64(il.AsSpan(i, 8)),
            };
            i += size;
            if (opcode.IsBranch())
            {
                operand += i;
            }

            instructions.Add(new Instruction(offset, opcode, operand, null, i));
        }

        return instructions;
    }

    private static void Require(ImmutableArray<byte> il, int at, int size)
    {
        if (at + size > il.Length)
        {
            throw new BadImageFormatException($"the IL ends inside an instruction at offset {at}");
        }
    }

    private static bool IsSignedByte(ILOpCode opcode) => opcode == ILOpCode.Ldc_i4_s || opcode.IsBranch();

    private static int OperandSize(ILOpCode opcode)
    {
        switch (opcode)
        {
            case ILOpCode.Ldarg_s or ILOpCode.Ldarga_s or ILOpCode.Starg_s or ILOpCode.Ldloc_s or ILOpCode.Ldloca_s
                or ILOpCode.Stloc_s or ILOpCode.Ldc_i4_s or ILOpCode.Unaligned:
                return 1;
            case ILOpCode.Ldarg or ILOpCode.Ldarga or ILOpCode.Starg or ILOpCode.Ldloc or ILOpCode.Ldloca or ILOpCode.Stloc:
                return 2;
            case ILOpCode.Ldc_i8 or ILOpCode.Ldc_r8:
                return 8;
            case ILOpCode.Ldc_i4 or ILOpCode.Ldc_r4 or ILOpCode.Jmp or ILOpCode.Call or ILOpCode.Calli or ILOpCode.Callvirt
                or ILOpCode.Cpobj or ILOpCode.Ldobj or ILOpCode.Ldstr or ILOpCode.Newobj or ILOpCode.Castclass or ILOpCode.Isinst
                or ILOpCode.Unbox or ILOpCode.Ldfld or ILOpCode.Ldflda or ILOpCode.Stfld or ILOpCode.Ldsfld or ILOpCode.Ldsflda
                or ILOpCode.Stsfld or ILOpCode.Stobj or ILOpCode.Box or ILOpCode.Newarr or ILOpCode.Ldelema or ILOpCode.Ldelem
                or ILOpCode.Stelem or ILOpCode.Unbox_any or ILOpCode.Refanyval or ILOpCode.Mkrefany or ILOpCode.Ldtoken
                or ILOpCode.Ldftn or ILOpCode.Ldvirtftn or ILOpCode.Initobj or ILOpCode.Constrained or ILOpCode.Sizeof:
                return 4;
            default:
                if (opcode.IsBranch())
                {
                    return opcode.GetBranchOperandSize();
                }

                return IsKnown(opcode) ? 0 : throw new BadImageFormatException($"unknown IL opcode 0x{(int)opcode:X}");
        }
    }

    private static bool IsKnown(ILOpCode opcode) =>
        Enum.IsDefined(opcode);
}

/// <summary>What a signature contains of the element types that are never type-safe.</summary>
[Flags]
internal enum SignatureFlags
{
    None = 0,
    Pointer = 1,
    FunctionPointer = 2,
    Pinned = 4,
    TypedReference = 8,
    ByRef = 16,
}

/// <summary>Decodes a signature into the union of the <see cref="SignatureFlags"/> of its element types.</summary>
internal sealed class SignatureFlagsProvider(MetadataReader reader) : ISignatureTypeProvider<SignatureFlags, object?>
{
    public static SignatureFlags Of(MethodSignature<SignatureFlags> signature)
    {
        SignatureFlags flags = signature.ReturnType;
        foreach (SignatureFlags parameter in signature.ParameterTypes)
        {
            flags |= parameter;
        }

        return flags;
    }

    public static SignatureFlags Of(ImmutableArray<SignatureFlags> types)
    {
        SignatureFlags flags = SignatureFlags.None;
        foreach (SignatureFlags type in types)
        {
            flags |= type;
        }

        return flags;
    }

    public SignatureFlags GetPrimitiveType(PrimitiveTypeCode typeCode) =>
        typeCode == PrimitiveTypeCode.TypedReference ? SignatureFlags.TypedReference : SignatureFlags.None;

    public SignatureFlags GetTypeFromDefinition(MetadataReader metadataReader, TypeDefinitionHandle handle, byte rawTypeKind) => SignatureFlags.None;

    public SignatureFlags GetTypeFromReference(MetadataReader metadataReader, TypeReferenceHandle handle, byte rawTypeKind) => SignatureFlags.None;

    public SignatureFlags GetTypeFromSpecification(MetadataReader metadataReader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) =>
        reader.GetTypeSpecification(handle).DecodeSignature(this, genericContext);

    public SignatureFlags GetSZArrayType(SignatureFlags elementType) => elementType;

    public SignatureFlags GetArrayType(SignatureFlags elementType, ArrayShape shape) => elementType;

    public SignatureFlags GetByReferenceType(SignatureFlags elementType) => elementType | SignatureFlags.ByRef;

    public SignatureFlags GetPointerType(SignatureFlags elementType) => elementType | SignatureFlags.Pointer;

    public SignatureFlags GetFunctionPointerType(MethodSignature<SignatureFlags> signature) => Of(signature) | SignatureFlags.FunctionPointer;

    public SignatureFlags GetGenericInstantiation(SignatureFlags genericType, ImmutableArray<SignatureFlags> typeArguments) => genericType | Of(typeArguments);

    public SignatureFlags GetGenericMethodParameter(object? genericContext, int index) => SignatureFlags.None;

    public SignatureFlags GetGenericTypeParameter(object? genericContext, int index) => SignatureFlags.None;

    public SignatureFlags GetModifiedType(SignatureFlags modifier, SignatureFlags unmodifiedType, bool isRequired) => unmodifiedType;

    public SignatureFlags GetPinnedType(SignatureFlags elementType) => elementType | SignatureFlags.Pinned;
}
