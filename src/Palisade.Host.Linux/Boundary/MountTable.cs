using System.Globalization;
using System.Text;

namespace Palisade.Host.Linux.Boundary;

/// <summary>
/// The supervisor's mounts, from <c>/proc/self/mountinfo</c>: for each, its id, the device of its file system, the path
/// within that file system it shows (its root: "/" unless it is a bind mount of a subdirectory), where it is mounted and
/// its file-system type. Two uses: placing a procfs object (the mount of its descriptor names the procfs instance and
/// the part of it shown), and a hint of which absolute paths cross into another mount. A hint that is out of date costs
/// one failed system call or one check too many; it never decides what is admitted.
/// </summary>
internal sealed class MountTable
{
    private readonly Lock _lock = new();
    private Mount[] _mounts = [];
    private byte[][] _crossingPrefixes = [];

    /// <summary>A mount: its id, file-system device, the root it shows, its mount point and file-system type.</summary>
    internal sealed record Mount(long Id, ulong Device, byte[] Root, byte[] Point, string FileSystem);

    /// <summary>Reads the table now.</summary>
    public MountTable() => Refresh();

    /// <summary>The mounts as last read.</summary>
    public IReadOnlyList<Mount> Mounts
    {
        get
        {
            lock (_lock)
            {
                return _mounts;
            }
        }
    }

    /// <summary>The mount with id <paramref name="id"/>, reading the table again when it is not known; null when it is not one of ours.</summary>
    public Mount? Find(long id)
    {
        Mount? found = Lookup(id);
        if (found is null)
        {
            Refresh();
            found = Lookup(id);
        }

        return found;
    }

    /// <summary>
    /// True when <paramref name="absolutePath"/> starts with a mount point other than "/" (component-wise): resolving it
    /// likely crosses into another mount. Allocates nothing.
    /// </summary>
    public bool MayCross(ReadOnlySpan<byte> absolutePath)
    {
        foreach (byte[] prefix in Volatile.Read(ref _crossingPrefixes))
        {
            if (absolutePath.StartsWith(prefix) && (absolutePath.Length == prefix.Length || absolutePath[prefix.Length] == (byte)'/'))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Reads /proc/self/mountinfo again.</summary>
    public void Refresh()
    {
        var mounts = new List<Mount>();
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            if (Parse(line) is { } mount)
            {
                mounts.Add(mount);
            }
        }

        byte[][] prefixes = [.. mounts.Where(m => m.Point.Length > 1).Select(m => m.Point).Distinct(new BytesComparer())];
        lock (_lock)
        {
            _mounts = [.. mounts];
            Volatile.Write(ref _crossingPrefixes, prefixes);
        }
    }

    private Mount? Lookup(long id)
    {
        lock (_lock)
        {
            foreach (Mount m in _mounts)
            {
                if (m.Id == id)
                {
                    return m;
                }
            }
        }

        return null;
    }

    /// <summary>"ID PARENT MAJOR:MINOR ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS".</summary>
    internal static Mount? Parse(string line)
    {
        string[] f = line.Split(' ');
        int separator = Array.IndexOf(f, "-", 6);
        if (f.Length < 7 || separator < 0 || separator + 1 >= f.Length)
        {
            return null;
        }

        string[] device = f[2].Split(':');
        if (!long.TryParse(f[0], NumberStyles.None, CultureInfo.InvariantCulture, out long id) || device.Length != 2
            || !uint.TryParse(device[0], NumberStyles.None, CultureInfo.InvariantCulture, out uint major)
            || !uint.TryParse(device[1], NumberStyles.None, CultureInfo.InvariantCulture, out uint minor))
        {
            return null;
        }

        return new Mount(id, MakeDevice(major, minor), Unescape(f[3]), Unescape(f[4]), f[separator + 1]);
    }

    /// <summary>The st_dev of a file system with device <paramref name="major"/>:<paramref name="minor"/> (glibc's makedev).</summary>
    public static ulong MakeDevice(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo.</summary>
    private static byte[] Unescape(string field)
    {
        var bytes = new List<byte>(field.Length);
        byte[] raw = Encoding.UTF8.GetBytes(field);
        for (int i = 0; i < raw.Length; i++)
        {
            if (raw[i] == (byte)'\\' && i + 3 < raw.Length && IsOctal(raw[i + 1]) && IsOctal(raw[i + 2]) && IsOctal(raw[i + 3]))
            {
                bytes.Add((byte)(((raw[i + 1] - '0') << 6) | ((raw[i + 2] - '0') << 3) | (raw[i + 3] - '0')));
                i += 3;
            }
            else
            {
                bytes.Add(raw[i]);
            }
        }

        return [.. bytes];

        static bool IsOctal(byte b) => b is >= (byte)'0' and <= (byte)'7';
    }

    private sealed class BytesComparer : IEqualityComparer<byte[]>
    {
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var hash = new HashCode();
            hash.AddBytes(obj);
            return hash.ToHashCode();
        }
    }
}
