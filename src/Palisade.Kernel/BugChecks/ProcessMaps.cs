using System.Globalization;

namespace Palisade.Kernel.BugChecks;

/// <summary>
/// Which mapping of this process holds an address, read from /proc/self/maps: used to name the owner of a jump
/// target or pointer that no loaded managed method owns (a native library, anonymous executable memory).
/// </summary>
internal static class ProcessMaps
{
    internal readonly record struct Mapping(ulong Start, ulong End, string Permissions, string Path)
    {
        internal bool IsReadable => Permissions.Length > 0 && Permissions[0] == 'r';

        internal bool IsExecutable => Permissions.Length > 2 && Permissions[2] == 'x';
    }

    internal static Mapping? Find(ulong address)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines("/proc/self/maps");
        }
        catch (IOException)
        {
            return null;
        }

        foreach (string line in lines)
        {
            string[] fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 5)
            {
                continue;
            }

            int dash = fields[0].IndexOf('-', StringComparison.Ordinal);
            if (dash < 0
                || !ulong.TryParse(fields[0].AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong start)
                || !ulong.TryParse(fields[0].AsSpan(dash + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong end))
            {
                continue;
            }

            if (address >= start && address < end)
            {
                string path = fields.Length == 6 ? fields[5].Trim() : string.Empty;
                return new Mapping(start, end, fields[1], path.Length == 0 ? "[anonymous]" : path);
            }
        }

        return null;
    }
}
