using Palisade.Interop;
using FileIdentity = Palisade.Api.FileIdentity;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// Reads a process's mappings from /proc/PID/maps, one line at a time, into a caller's buffer (nothing allocated): the
/// address range, permissions, and for a file mapping the file's identity (device and inode as Linux prints them) and name.
/// </summary>
internal unsafe ref struct ProcMaps
{
    private readonly Span<byte> _buffer;
    private int _fd;
    private int _start;
    private int _end;
    private bool _eof;

    /// <summary>Opens /proc/<paramref name="pid"/>/maps; <see cref="IsOpen"/> is false when it cannot be read (the process is gone).</summary>
    public ProcMaps(int pid, Span<byte> proc, Span<byte> buffer)
    {
        _buffer = buffer;
        ProcFs.Format(proc, pid, "maps"u8);
        fixed (byte* p = proc)
        {
            _fd = Libc.OpenAt(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        }
    }

    public readonly bool IsOpen => _fd >= 0;

    /// <summary>The next mapping; false at the end (or on a read error).</summary>
    public bool Next(out MapLine line)
    {
        line = default;
        while (_fd >= 0)
        {
            int newline = _buffer[_start.._end].IndexOf((byte)'\n');
            if (newline >= 0)
            {
                ReadOnlySpan<byte> text = _buffer.Slice(_start, newline);
                _start += newline + 1;
                if (MapLine.TryParse(text, out line))
                {
                    return true;
                }

                continue;
            }

            if (_eof)
            {
                return false;
            }

            // Keep the partial line, then read more after it.
            int kept = _end - _start;
            _buffer[_start.._end].CopyTo(_buffer);
            _start = 0;
            _end = kept;
            if (_end == _buffer.Length)
            {
                // A line longer than the buffer (a path near PATH_MAX): skip it.
                _end = 0;
            }

            nint got;
            fixed (byte* b = _buffer)
            {
                got = Libc.Read(_fd, b + _end, (nuint)(_buffer.Length - _end));
            }

            if (got <= 0)
            {
                // The end: a last line without its newline still counts.
                _eof = true;
                if (got == 0 && _end > 0 && MapLine.TryParse(_buffer[.._end], out line))
                {
                    _end = 0;
                    return true;
                }

                return false;
            }

            _end += (int)got;
        }

        return false;
    }

    public void Dispose()
    {
        Libc.CloseOwned(_fd);
        _fd = -1;
    }
}

/// <summary>One line of /proc/PID/maps: <c>start-end perms offset major:minor inode [name]</c>.</summary>
internal readonly ref struct MapLine
{
    public ulong Start { get; init; }

    public ulong End { get; init; }

    public bool Executable { get; init; }

    /// <summary>The file's identity, dev_t encoded as stat reports it; none for an anonymous mapping.</summary>
    public FileIdentity File { get; init; }

    /// <summary>The name Linux shows (a path, possibly with " (deleted)"; [heap], [stack] for special mappings).</summary>
    public ReadOnlySpan<byte> Name { get; init; }

    public static bool TryParse(ReadOnlySpan<byte> text, out MapLine line)
    {
        line = default;
        int at = 0;
        if (!Hex(text, ref at, (byte)'-', out ulong start) || !Hex(text, ref at, (byte)' ', out ulong end)
            || at + 5 > text.Length)
        {
            return false;
        }

        bool executable = text[at + 2] == (byte)'x';
        at += 5;
        if (!Hex(text, ref at, (byte)' ', out _) || !Hex(text, ref at, (byte)':', out ulong major)
            || !Hex(text, ref at, (byte)' ', out ulong minor) || !Decimal(text, ref at, out ulong inode))
        {
            return false;
        }

        while (at < text.Length && text[at] == (byte)' ')
        {
            at++;
        }

        line = new MapLine
        {
            Start = start,
            End = end,
            Executable = executable,
            File = inode == 0 ? default : new FileIdentity(MakeDevice(major, minor), inode),
            Name = text[at..],
        };
        return true;
    }

    /// <summary>glibc's makedev: the dev_t that stat reports for a major and minor number.</summary>
    public static ulong MakeDevice(ulong major, ulong minor) =>
        ((major & 0xFFFF_F000) << 32) | ((major & 0xFFF) << 8) | ((minor & 0xFFFF_FF00) << 12) | (minor & 0xFF);

    private static bool Hex(ReadOnlySpan<byte> text, ref int at, byte end, out ulong value)
    {
        value = 0;
        int begin = at;
        while (at < text.Length && text[at] != end)
        {
            byte c = text[at];
            int digit = c is >= (byte)'0' and <= (byte)'9' ? c - '0' : c is >= (byte)'a' and <= (byte)'f' ? c - 'a' + 10 : -1;
            if (digit < 0)
            {
                return false;
            }

            value = (value << 4) | (uint)digit;
            at++;
        }

        if (at == begin || at >= text.Length)
        {
            return false;
        }

        at++;
        return true;
    }

    private static bool Decimal(ReadOnlySpan<byte> text, ref int at, out ulong value)
    {
        value = 0;
        int begin = at;
        while (at < text.Length && text[at] is >= (byte)'0' and <= (byte)'9')
        {
            value = (value * 10) + (ulong)(text[at] - '0');
            at++;
        }

        return at > begin;
    }
}
