using Palisade.Api;
using Palisade.Host.Linux.Authority;
using Palisade.Host.Linux.Syscalls;
using Palisade.Interop;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// The images one exec loads, found as Linux finds them, from the exact files Linux will load (each read through the
/// supervisor's descriptor of it, never through a path resolved again):
/// <list type="bullet">
/// <item>a <c>#!</c> script's interpreter (fs/binfmt_script.c): the first 256 bytes, the interpreter name after <c>#!</c>
/// and optional spaces or tabs up to the next space, tab, NUL or newline, one optional argument, a line without a newline
/// accepted only when the name ends inside it; the interpreter is resolved as Linux's open_exec resolves it (the guest's
/// root and working directory, its credentials, symbolic links followed), and may itself be a script, up to Linux's 5
/// levels (exec_binprm, a sixth fails with ELOOP);</item>
/// <item>the ELF interpreter of the program that finally runs (fs/binfmt_elf.c): the first PT_INTERP program header of a
/// 64- or 32-bit ELF, a NUL-terminated path of 2 to PATH_MAX bytes.</item>
/// </list>
/// What Linux would refuse (no interpreter name, a truncated name, a missing file) is not an image: the exec fails there.
/// </summary>
internal static unsafe class ExecImages
{
    /// <summary>How many <c>#!</c> lines Linux follows in one exec.</summary>
    public const int MaxScriptDepth = 5;

    /// <summary>BINPRM_BUF_SIZE: what Linux reads of a file to recognise its format.</summary>
    private const int HeadSize = 256;

    private const uint PT_INTERP = 3;

    /// <summary>Linux reads at most this much of the program headers (binfmt_elf's limit).</summary>
    private const int MaxProgramHeaders = 65536;

    /// <summary>
    /// Every image the exec of <paramref name="image"/> (an O_PATH descriptor, not owned) loads, the file named first.
    /// <paramref name="program"/> is the program Linux finally runs (what /proc/PID/exe shows after the exec), and
    /// <paramref name="elfInterpreter"/> its ELF interpreter (none when it has none).
    /// </summary>
    public static ImageLoadInfo[] Find(GuestAuthority guest, int tid, int processId, int image, in Stat stat, string imagePath, Scratch s,
        out FileIdentity program, out FileIdentity elfInterpreter)
    {
        var images = new List<ImageLoadInfo>(2);
        program = default;
        elfInterpreter = default;
        int current = image;
        var currentStat = stat;
        string currentPath = imagePath;
        Span<byte> head = stackalloc byte[HeadSize + 1];
        try
        {
            for (int depth = 0; ; depth++)
            {
                bool named = depth == 0;
                var identity = new FileIdentity(currentStat.Dev, currentStat.Ino);
                FileObjectType type = Libc.TypeOf(currentStat.Mode);
                int readable = type == FileObjectType.Regular ? OpenReadable(current) : -1;
                try
                {
                    head.Clear();
                    int got = readable < 0 ? 0 : Read(readable, 0, head[..HeadSize]);
                    bool script = got >= 2 && head[0] == (byte)'#' && head[1] == (byte)'!';
                    images.Add(new ImageLoadInfo
                    {
                        ProcessId = processId,
                        ImagePath = currentPath,
                        File = identity,
                        FileType = type,
                        Kind = !named ? ImageLoadKind.ScriptInterpreter : script ? ImageLoadKind.Script : ImageLoadKind.Executable,
                    });

                    if (!script)
                    {
                        program = identity;
                        if (readable >= 0 && FindElfInterpreter(readable, head[..got], s) is > 0 and var length
                            && Resolve(guest, tid, s.Directory.AsSpan(0, length + 1), s, out int interpreter, out Stat interpreterStat, out string? path))
                        {
                            Libc.CloseOwned(interpreter);
                            elfInterpreter = new FileIdentity(interpreterStat.Dev, interpreterStat.Ino);
                            images.Add(new ImageLoadInfo
                            {
                                ProcessId = processId,
                                ImagePath = path,
                                File = elfInterpreter,
                                FileType = Libc.TypeOf(interpreterStat.Mode),
                                Kind = ImageLoadKind.ElfInterpreter,
                            });
                        }

                        return [.. images];
                    }

                    if (depth == MaxScriptDepth || ScriptInterpreter(head[..HeadSize], s.Directory) is not (> 0 and var nameLength)
                        || !Resolve(guest, tid, s.Directory.AsSpan(0, nameLength + 1), s, out int next, out Stat nextStat, out string? nextPath))
                    {
                        // Linux fails this exec (ELOOP, ENOEXEC, ENOENT): nothing more runs.
                        return [.. images];
                    }

                    if (current != image)
                    {
                        Libc.CloseOwned(current);
                    }

                    current = next;
                    currentStat = nextStat;
                    currentPath = nextPath;
                }
                finally
                {
                    Libc.CloseOwned(readable);
                }
            }
        }
        finally
        {
            if (current != image)
            {
                Libc.CloseOwned(current);
            }
        }
    }

    /// <summary>
    /// The interpreter name of a <c>#!</c> line (<paramref name="buffer"/> holds the first 256 bytes, zero-filled), written
    /// NUL-terminated into <paramref name="name"/>; its length, or 0 when Linux finds none (binfmt_script's load_script).
    /// </summary>
    internal static int ScriptInterpreter(ReadOnlySpan<byte> buffer, Span<byte> name)
    {
        int end = buffer.IndexOf((byte)'\n');
        if (end < 0)
        {
            // No newline in the buffer: the name must end (a space, tab or NUL) before the buffer does.
            int first = NextNonSpaceTab(buffer, 2, HeadSize - 1);
            if (first < 0 || NextTerminator(buffer, first, HeadSize - 1) < 0)
            {
                return 0;
            }

            end = HeadSize - 1;
        }

        while (end > 2 && buffer[end - 1] is (byte)' ' or (byte)'\t')
        {
            end--;
        }

        int start = NextNonSpaceTab(buffer, 2, end);
        if (start < 0)
        {
            return 0;
        }

        int stop = NextTerminator(buffer, start, end);
        if (stop < 0)
        {
            stop = end;
        }

        int length = stop - start;
        if (length == 0 || length >= name.Length)
        {
            return 0;
        }

        buffer[start..stop].CopyTo(name);
        name[length] = 0;
        return length;
    }

    private static int NextNonSpaceTab(ReadOnlySpan<byte> buffer, int from, int end)
    {
        for (int i = from; i < end; i++)
        {
            if (buffer[i] is not ((byte)' ' or (byte)'\t'))
            {
                return i;
            }
        }

        return -1;
    }

    private static int NextTerminator(ReadOnlySpan<byte> buffer, int from, int end)
    {
        for (int i = from; i < end; i++)
        {
            if (buffer[i] is (byte)' ' or (byte)'\t' or 0)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// The PT_INTERP path of an ELF (<paramref name="head"/> is its start), written NUL-terminated into
    /// <see cref="Scratch.Directory"/>; its length, 0 for an ELF without one or anything else.
    /// </summary>
    private static int FindElfInterpreter(int fd, ReadOnlySpan<byte> head, Scratch s)
    {
        if (head.Length < 52 || head[0] != 0x7F || head[1] != (byte)'E' || head[2] != (byte)'L' || head[3] != (byte)'F' || head[5] != 1)
        {
            return 0;
        }

        bool wide = head[4] == 2;
        if (!wide && head[4] != 1 || (wide && head.Length < 64))
        {
            return 0;
        }

        long tableOffset = wide ? (long)BitConverter.ToUInt64(head[32..]) : BitConverter.ToUInt32(head[28..]);
        int entrySize = BitConverter.ToUInt16(head[(wide ? 54 : 42)..]);
        int entries = BitConverter.ToUInt16(head[(wide ? 56 : 44)..]);
        int tableSize = entrySize * entries;
        if (entrySize != (wide ? 56 : 32) || tableSize == 0 || tableSize > MaxProgramHeaders || tableSize > s.Value.Length || tableOffset < 0)
        {
            return 0;
        }

        Span<byte> table = s.Value.AsSpan(0, tableSize);
        if (Read(fd, tableOffset, table) != tableSize)
        {
            return 0;
        }

        for (int i = 0; i < entries; i++)
        {
            ReadOnlySpan<byte> entry = table.Slice(i * entrySize, entrySize);
            if (BitConverter.ToUInt32(entry) != PT_INTERP)
            {
                continue;
            }

            long offset = wide ? (long)BitConverter.ToUInt64(entry[8..]) : BitConverter.ToUInt32(entry[4..]);
            long size = wide ? (long)BitConverter.ToUInt64(entry[32..]) : BitConverter.ToUInt32(entry[16..]);
            if (size < 2 || size > Scratch.PathMax || offset < 0)
            {
                return 0;
            }

            Span<byte> path = s.Directory.AsSpan(0, (int)size);
            if (Read(fd, offset, path) != size || path[^1] != 0)
            {
                return 0;
            }

            int length = path.IndexOf((byte)0);
            return length;
        }

        return 0;
    }

    /// <summary>Resolves an interpreter as open_exec does for the guest: its root, working directory and credentials.</summary>
    private static bool Resolve(GuestAuthority guest, int tid, ReadOnlySpan<byte> pathWithNul, Scratch s, out int fd, out Stat stat, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? path)
    {
        fd = -1;
        stat = default;
        path = null;
        int baseFd = PathResolution.OpenBase(tid, Libc.AT_FDCWD, pathWithNul[..^1], s.Proc);
        if (baseFd < 0 && baseFd != Libc.AT_FDCWD)
        {
            return false;
        }

        try
        {
            fd = GuestResolver.OpenObject(guest, baseFd, pathWithNul, follow: true);
        }
        finally
        {
            PathResolution.CloseBase(baseFd);
        }

        if (fd < 0)
        {
            return false;
        }

        Stat st;
        int length = Libc.FStat(fd, &st) == 0 ? ProcFs.ReadSelfFdLink(fd, s.Proc, s.Resolved) : -1;
        if (length <= 0)
        {
            Libc.CloseOwned(fd);
            fd = -1;
            return false;
        }

        stat = st;
        path = System.Text.Encoding.UTF8.GetString(s.Resolved, 0, length);
        return true;
    }

    /// <summary>Opens the file behind the supervisor's O_PATH descriptor for reading (the same file, not a path again).</summary>
    private static int OpenReadable(int fd)
    {
        Span<byte> link = stackalloc byte[40];
        ProcFs.FormatSelfFd(link, fd);
        fixed (byte* p = link)
        {
            return Libc.OpenAt(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NONBLOCK, 0);
        }
    }

    private static int Read(int fd, long offset, Span<byte> destination)
    {
        int total = 0;
        fixed (byte* d = destination)
        {
            while (total < destination.Length)
            {
                nint got = Libc.PRead(fd, d + total, (nuint)(destination.Length - total), offset + total);
                if (got <= 0)
                {
                    break;
                }

                total += (int)got;
            }
        }

        return total;
    }
}
