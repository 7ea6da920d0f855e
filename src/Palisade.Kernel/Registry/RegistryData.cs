// Value data as the registry stores it: the Windows encodings (UTF-16LE strings with a terminating NUL, REG_MULTI_SZ
// as NUL-separated strings ending with an empty one, little-endian numbers), and the checks a set must pass.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Palisade.Api;

namespace Palisade.Kernel.Registry;

internal static class RegistryData
{
    /// <summary>
    /// Checks data for a value of type <paramref name="type"/>: a known type, at most 1 MiB, exactly 4 bytes for
    /// REG_DWORD and 8 for REG_QWORD, an even length for the string types.
    /// </summary>
    /// <returns><see cref="Status.Success"/> or <see cref="Status.InvalidParameter"/>.</returns>
    public static Status Validate(RegistryValueType type, ReadOnlySpan<byte> data)
    {
        if (data.Length > RegistryLimits.MaxValueDataLength)
        {
            return Status.InvalidParameter;
        }

        bool ok = type switch
        {
            RegistryValueType.None or RegistryValueType.Binary => true,
            RegistryValueType.String or RegistryValueType.ExpandString or RegistryValueType.MultiString => data.Length % 2 == 0,
            RegistryValueType.DWord => data.Length == 4,
            RegistryValueType.QWord => data.Length == 8,
            _ => false,
        };
        return ok ? Status.Success : Status.InvalidParameter;
    }

    public static byte[] FromString(string value)
    {
        var data = new byte[(value.Length + 1) * 2];
        MemoryMarshal.AsBytes(value.AsSpan()).CopyTo(data);
        return data;
    }

    public static byte[] FromMultiString(IReadOnlyList<string> values)
    {
        var text = new StringBuilder();
        foreach (string value in values)
        {
            text.Append(value).Append('\0');
        }

        text.Append('\0');
        return Encoding.Unicode.GetBytes(text.ToString());
    }

    public static byte[] FromDWord(uint value)
    {
        var data = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(data, value);
        return data;
    }

    public static byte[] FromQWord(ulong value)
    {
        var data = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(data, value);
        return data;
    }

    /// <summary>The string in REG_SZ / REG_EXPAND_SZ data, up to its first NUL (or the whole data without one).</summary>
    public static string ToString(ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<char> chars = MemoryMarshal.Cast<byte, char>(data[..(data.Length & ~1)]);
        int nul = chars.IndexOf('\0');
        return (nul < 0 ? chars : chars[..nul]).ToString();
    }

    /// <summary>The strings in REG_MULTI_SZ data; the list ends at the first empty string.</summary>
    public static List<string> ToMultiString(ReadOnlySpan<byte> data)
    {
        var result = new List<string>();
        ReadOnlySpan<char> chars = MemoryMarshal.Cast<byte, char>(data[..(data.Length & ~1)]);
        while (!chars.IsEmpty)
        {
            int nul = chars.IndexOf('\0');
            ReadOnlySpan<char> item = nul < 0 ? chars : chars[..nul];
            if (item.IsEmpty)
            {
                break;
            }

            result.Add(item.ToString());
            chars = nul < 0 ? default : chars[(nul + 1)..];
        }

        return result;
    }
}
