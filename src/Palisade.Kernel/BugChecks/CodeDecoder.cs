using System.Globalization;
using Iced.Intel;

namespace Palisade.Kernel.BugChecks;

/// <summary>
/// Decodes the first instruction(s) at a changed code address with Iced and says where control now goes: the
/// forms detours use are jmp/call rel32, jmp [rip+disp] through a pointer cell, mov reg, imm64 followed by
/// jmp reg, and push imm32; ret. Works on the bytes recorded in a dump, so <c>palisade analyze</c> uses it too.
/// </summary>
internal static class CodeDecoder
{
    internal readonly record struct Decoded(string Instruction, ulong? Target, ulong? IndirectCell);

    /// <summary>Decodes <paramref name="code"/> as if it sat at <paramref name="address"/>.</summary>
    internal static Decoded Decode(byte[] code, ulong address)
    {
        ArgumentNullException.ThrowIfNull(code);
        if (code.Length == 0)
        {
            return new Decoded("(no bytes)", null, null);
        }

        var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(code), address);
        decoder.Decode(out Instruction first);
        string text = Format(first);
        if (first.IsInvalid)
        {
            return new Decoded(text, null, null);
        }

        if (first.FlowControl is FlowControl.UnconditionalBranch or FlowControl.Call or FlowControl.ConditionalBranch
            && first.Op0Kind is OpKind.NearBranch64)
        {
            return new Decoded(text, first.NearBranchTarget, null);
        }

        if (first.FlowControl is FlowControl.IndirectBranch or FlowControl.IndirectCall && first.IsIPRelativeMemoryOperand)
        {
            ulong cell = first.IPRelativeMemoryAddress;
            ulong offset = cell - address;
            ulong? target = code.Length >= 8 && offset <= (ulong)(code.Length - 8)
                ? BitConverter.ToUInt64(code, (int)offset)
                : null;
            return new Decoded(text, target, cell);
        }

        if (decoder.IP < address + (ulong)code.Length)
        {
            decoder.Decode(out Instruction second);
            if (first.Code == Code.Mov_r64_imm64 && second.FlowControl is FlowControl.IndirectBranch
                && second.Op0Kind == OpKind.Register && second.Op0Register == first.Op0Register)
            {
                return new Decoded(text + "; " + Format(second), first.Immediate64, null);
            }

            if (first.Code == Code.Pushq_imm32 && second.FlowControl == FlowControl.Return)
            {
                return new Decoded(text + "; " + Format(second), (ulong)(long)first.Immediate32to64, null);
            }
        }

        return new Decoded(text, null, null);
    }

    /// <summary>
    /// Where a patch of whole-body evidence starts: the offset of the instruction of <paramref name="before"/> (decoded from
    /// its start) that holds the first byte <paramref name="now"/> changes. 0 when nothing before the shorter end differs.
    /// </summary>
    internal static int ChangedInstruction(byte[] before, byte[] now, ulong address)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(now);
        int common = Math.Min(before.Length, now.Length);
        int diff = 0;
        while (diff < common && before[diff] == now[diff])
        {
            diff++;
        }

        if (diff == common)
        {
            return 0;
        }

        var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(before), address);
        ulong changed = address + (ulong)diff;
        while (decoder.IP <= changed)
        {
            ulong start = decoder.IP;
            decoder.Decode(out Instruction instruction);
            if (instruction.IsInvalid || decoder.IP > changed)
            {
                // Inside this instruction (or in bytes that are not code, such as padding or a jump table): start here.
                return instruction.IsInvalid ? diff : (int)(start - address);
            }
        }

        return diff;
    }

    internal static string Hex(ulong value) => "0x" + value.ToString("X", CultureInfo.InvariantCulture);

    internal static ulong ParseHex(string text)
    {
        string digits = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text;
        return ulong.Parse(digits, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
    }

    private static string Format(in Instruction instruction)
    {
        var formatter = new IntelFormatter();
        formatter.Options.FirstOperandCharIndex = 0;
        var output = new StringOutput();
        formatter.Format(instruction, output);
        return output.ToStringAndReset();
    }
}
