// The operations of the crash test, shared by the writer and the test that checks what survived (the test project
// compiles this file too), so both agree on what operation i wrote.
using System.Buffers.Binary;

namespace Palisade.Kernel.Registry;

internal static class CrashStream
{
    public const string RootKey = @"\Registry\Machine\Crash";
    public const string LatestName = "Latest";
    public const int MaxOperations = 200_000;

    public static string KeyPath(int i) => RootKey + @"\K" + (i % 16).ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static string ValueName(int i) => "V" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>8 to about 3 KB of bytes that depend on i everywhere, starting with i itself.</summary>
    public static byte[] Data(int i)
    {
        var data = new byte[8 + (i * 37 % 3001)];
        BinaryPrimitives.WriteInt64LittleEndian(data, i);
        for (int k = 8; k < data.Length; k++)
        {
            data[k] = (byte)((i * 31) + (k * 7));
        }

        return data;
    }
}
