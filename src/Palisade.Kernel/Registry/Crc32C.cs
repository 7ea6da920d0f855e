// CRC-32C (Castagnoli), the checksum of every hive record. It uses the SSE4.2 crc32 instruction when the CPU
// has it and a table otherwise; both give the same value, so a hive moves freely between machines.
using System.Buffers.Binary;
using System.Runtime.Intrinsics.X86;

namespace Palisade.Kernel.Registry;

internal static class Crc32C
{
    // Reflected Castagnoli polynomial.
    private const uint Polynomial = 0x82F6_3B78;

    private static readonly uint[] Table = CreateTable();

    /// <summary>The CRC-32C of <paramref name="data"/> (initial value and final xor 0xFFFFFFFF).</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Update(uint.MaxValue, data));

    /// <summary>Starts a running CRC; feed it with <see cref="Update"/> and end it with <see cref="Finish"/>.</summary>
    public static uint Start() => uint.MaxValue;

    public static uint Finish(uint running) => ~running;

    public static uint Update(uint running, ReadOnlySpan<byte> data)
    {
        if (Sse42.X64.IsSupported)
        {
            ulong c = running;
            while (data.Length >= 8)
            {
                c = Sse42.X64.Crc32(c, BinaryPrimitives.ReadUInt64LittleEndian(data));
                data = data[8..];
            }

            uint c32 = (uint)c;
            foreach (byte b in data)
            {
                c32 = Sse42.Crc32(c32, b);
            }

            return c32;
        }

        return UpdateSoftware(running, data);
    }

    /// <summary>The table-driven path, used without SSE4.2; internal so tests can check both paths agree.</summary>
    internal static uint UpdateSoftware(uint running, ReadOnlySpan<byte> data)
    {
        uint[] table = Table;
        foreach (byte b in data)
        {
            running = table[(running ^ b) & 0xFF] ^ (running >> 8);
        }

        return running;
    }

    private static uint[] CreateTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? (c >> 1) ^ Polynomial : c >> 1;
            }

            table[i] = c;
        }

        return table;
    }
}
