using System.Buffers.Text;
using System.Runtime.CompilerServices;
using Microsoft.Win32.SafeHandles;
using Palisade.Interop;
using Palisade.Host.Linux.Supervision;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Authority;

/// <summary>
/// A guest process as the supervisor holds it: its memory (an open /proc/PID/mem, bound to the process's address space
/// at open) and a pidfd (for its descriptors). A read through <see cref="Memory"/> returns nothing once the address
/// space is gone — the process ended or replaced it by exec — which is how a stale entry gives itself away without a
/// system call of its own.
/// </summary>
internal sealed class SupervisedProcess
{
    public SupervisedProcess(int processId, SafeFileHandle memory, SafeFileHandle pidfd)
    {
        ProcessId = processId;
        Memory = memory;
        Pidfd = pidfd;
    }

    /// <summary>The process (thread-group) id.</summary>
    public int ProcessId { get; }

    /// <summary>/proc/PID/mem of the address space the process had when it was opened.</summary>
    public SafeFileHandle Memory { get; }

    /// <summary>A pidfd of the process.</summary>
    public SafeFileHandle Pidfd { get; }

    /// <summary>Set when the process exec'd: its memory must be opened again for the new address space.</summary>
    public bool MemoryStale { get; set; }

    /// <summary>True when the process installed seccomp filters of its own (a filter can kill one thread silently).</summary>
    public bool OwnFilters { get; set; }

    public void Close()
    {
        Memory.Dispose();
        Pidfd.Dispose();
    }
}

/// <summary>A guest thread as the supervisor holds it: its process and the authority it acts with. Immutable.</summary>
internal sealed class SupervisedThread
{
    public SupervisedThread(SupervisedProcess process, GuestAuthority authority, long generation, SafeFileHandle? threadPidfd)
    {
        Process = process;
        Authority = authority;
        Generation = generation;
        ThreadPidfd = threadPidfd;
    }

    public SupervisedProcess Process { get; }

    public GuestAuthority Authority { get; }

    /// <summary>The <see cref="GuestThreads"/> generation this entry was read in.</summary>
    public long Generation { get; }

    /// <summary>For a thread of a process with filters of its own, a pidfd of the thread itself (checked at each use).</summary>
    public SafeFileHandle? ThreadPidfd { get; }

    public Requester Requester => Authority.Requester;
}

/// <summary>
/// The guest threads the supervisor has seen, each with the authority it acts with. A thread is read from
/// /proc/TID/status the first time it makes a mediated call, and kept until something that can change what it is
/// happens; the filter notifies those calls, which are rare, and the supervisor forgets before letting them run:
/// <list type="bullet">
/// <item>the thread itself (setuid, setgid, setre*, setres*, setfs*, setgroups, capset, landlock_restrict_self,
/// seccomp, prctl(PR_SET_SECCOMP), exit): <see cref="ForgetThread"/>;</item>
/// <item>its process (execve, execveat, exit_group): <see cref="ForgetProcess"/> or <see cref="ProcessExecs"/>;</item>
/// <item>anything that may share the fs context it changes (umask, chroot, pivot_root, unshare, setns, and
/// pivot_root also moves other processes' roots): <see cref="InvalidateAll"/>, which makes every entry be read again.</item>
/// </list>
/// A thread id is reused only after its thread ended, which the entry learns without a system call of its own: a thread
/// announces its end with exit (notified) unless its whole process ends (then its memory reads nothing, see
/// <see cref="SupervisedProcess"/>) or a filter of the process's own kills it (then the process's threads are checked
/// through a pidfd of their own at each use).
/// </summary>
/// <remarks>Shared by the supervisor's threads (the receiving one and those serving slow notifications): every method
/// takes one lock, held for a dictionary lookup on the hot path (<see cref="TryGet"/>).</remarks>
internal sealed unsafe class GuestThreads : IDisposable
{
    private static readonly byte[] OwnUserNamespace = ReadOwnUserNamespace();

    /// <summary>
    /// How many seccomp filters a guest has that are not its own: the supervisor's inherited ones (a container's profile)
    /// and Palisade's. A guest with more installed one of its own.
    /// </summary>
    private static readonly int InheritedFilters = CountOwnFilters() + 1;
    private static readonly StatxBuffer KernelRoot = StatRoot();

    /// <summary>The most threads whose entry is kept at once: a guest that makes threads without end must not grow the
    /// kernel's memory without end (beyond, the entries are dropped and read again at their next call).</summary>
    public const int MaxThreads = 65536;

    private readonly Lock _lock = new();
    private readonly Dictionary<int, SupervisedThread> _threads = [];
    private readonly Dictionary<int, SupervisedProcess> _processes = [];
    private readonly HashSet<int> _known = [];
    private readonly Dictionary<int, int> _knownThreads = [];
    private long _generation;

    /// <summary>Which Landlock domain each thread is in.</summary>
    public LandlockLineage Lineage { get; } = new();

    /// <summary>Entries are read again after <see cref="InvalidateAll"/>; this counts the invalidations.</summary>
    public long Generation => Interlocked.Read(ref _generation);

    /// <summary>The thread's entry when it is current; false when it must be read (first sight, or forgotten).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryGet(int tid, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SupervisedThread? thread)
    {
        if (!_threads.TryGetValue(tid, out thread) || thread.Generation != _generation)
        {
            return false;
        }

        if (thread.ThreadPidfd is { } pidfd && Exited(pidfd))
        {
            // A filter of the process's own ended the thread without an exit call: this id is someone else's now.
            ForgetThread(tid);
            thread = null;
            return false;
        }

        return true;
    }

    /// <summary>The process of <paramref name="tid"/> when the thread is known (current or not), else 0.</summary>
    public int ProcessOf(int tid)
    {
        lock (_lock)
        {
            return _threads.TryGetValue(tid, out SupervisedThread? t) ? t.Process.ProcessId : 0;
        }
    }

    /// <summary>
    /// Reads thread <paramref name="tid"/> from /proc and enters it. <paramref name="newProcess"/> is true the first
    /// time its process is seen (since it was forgotten), <paramref name="newThread"/> the first time the thread is;
    /// <paramref name="parent"/> is the process's parent. Null when the thread is gone. The caller must then confirm the
    /// thread still waits (ID_VALID): only then was what was read this thread's.
    /// </summary>
    public SupervisedThread? Read(int tid, Scratch s, out bool newProcess, out bool newThread, out int parent)
    {
        lock (_lock)
        {
            newProcess = newThread = false;
            parent = 0;
            byte[] buffer = s.Status;
            int length = ProcFs.ReadStatus(tid, s.Proc, buffer);
            while (length == buffer.Length)
            {
                // A long list of supplementary groups: read it whole (rare, so allocated).
                buffer = new byte[buffer.Length * 4];
                length = ProcFs.ReadStatus(tid, s.Proc, buffer);
            }

            if (length <= 0 || !ThreadStatus.TryParse(buffer.AsSpan(0, length), out ThreadStatus status))
            {
                return null;
            }

            parent = status.Parent;
            SupervisedProcess? process = ProcessEntry(status.ProcessId, s);
            if (process is null)
            {
                return null;
            }

            process.OwnFilters |= status.SeccompFilters > InheritedFilters;
            bool initialNamespace = InInitialUserNamespace(tid, s);
            Span<uint> groups = status.GroupCount <= 256 ? stackalloc uint[status.GroupCount] : new uint[status.GroupCount];
            status.CopyGroups(buffer.AsSpan(0, length), groups);
            ActingCredentials acting = ActingCredentials.Intern(
                status.FileSystemUser, status.FileSystemGroup, groups, initialNamespace ? status.EffectiveCapabilities : 0);
            var requester = new Requester(status.ProcessId, tid) { UserId = (int)status.RealUser };
            bool firstOfProcess = !_known.Contains(status.ProcessId);
            LandlockDomain? domain = Lineage.DomainOf(tid, process, status.Parent, firstOfProcess, out bool domainUnknown);
            var authority = new GuestAuthority(requester, acting, HasKernelRoot(tid, s), status.Umask, initialNamespace, domain, domainUnknown);
            SafeFileHandle? threadPidfd = process.OwnFilters ? OpenThreadPidfd(tid) : null;
            var thread = new SupervisedThread(process, authority, _generation, threadPidfd);
            if (_threads.Remove(tid, out SupervisedThread? old))
            {
                old.ThreadPidfd?.Dispose();
            }

            if (_threads.Count >= MaxThreads)
            {
                foreach (SupervisedThread t in _threads.Values)
                {
                    t.ThreadPidfd?.Dispose();
                }

                _threads.Clear();
                _knownThreads.Clear();
            }

            _threads[tid] = thread;
            newProcess = _known.Add(status.ProcessId);
            newThread = !_knownThreads.TryGetValue(tid, out int knownIn) || knownIn != status.ProcessId;
            _knownThreads[tid] = status.ProcessId;
            return thread;
        }
    }

    /// <summary>Forgets what was read of one thread (it changes its credentials or sandbox): it is read again at its next call.</summary>
    public void ForgetThread(int tid)
    {
        lock (_lock)
        {
            if (_threads.Remove(tid, out SupervisedThread? t))
            {
                t.ThreadPidfd?.Dispose();
            }
        }
    }

    /// <summary>A thread ends (exit): forgotten, and its id names a new thread if it is seen again.</summary>
    public void ThreadEnds(int tid)
    {
        lock (_lock)
        {
            ForgetThread(tid);
            _knownThreads.Remove(tid);
            Lineage.ThreadEnds(tid);
        }
    }

    /// <summary>A thread of <paramref name="processId"/> execs: its threads are read again and its memory opened again.</summary>
    public void ProcessExecs(int processId)
    {
        lock (_lock)
        {
            ForgetThreadsOf(processId);
            if (_processes.TryGetValue(processId, out SupervisedProcess? p))
            {
                p.MemoryStale = true;
            }
        }
    }

    /// <summary>
    /// Forgets a process that ended (or whose memory read nothing: it is not the process the entry was made for) and
    /// all its threads; the next sight of its pid is a new process.
    /// </summary>
    public void ForgetProcess(int processId)
    {
        lock (_lock)
        {
            ForgetThreadsOf(processId);
            Lineage.ProcessEnds(processId, Lineage.Any ? ThreadsOf(processId) : []);

            // Without allocating: an exit_group is on the path of every guest's end.
            Span<int> ended = stackalloc int[64];
            while (true)
            {
                int count = 0;
                foreach (var (tid, owner) in _knownThreads)
                {
                    if (owner == processId && count < ended.Length)
                    {
                        ended[count++] = tid;
                    }
                }

                for (int i = 0; i < count; i++)
                {
                    _knownThreads.Remove(ended[i]);
                }

                if (count < ended.Length)
                {
                    break;
                }
            }

            if (_processes.Remove(processId, out SupervisedProcess? p))
            {
                p.Close();
            }

            _known.Remove(processId);
        }
    }

    /// <summary>The threads of a process the supervisor has seen.</summary>
    private List<int> ThreadsOf(int processId)
    {
        var threads = new List<int>();
        foreach (var (tid, owner) in _knownThreads)
        {
            if (owner == processId)
            {
                threads.Add(tid);
            }
        }

        return threads;
    }

    /// <summary>Every entry is read again at its next use (something that may be shared between threads or processes changed).</summary>
    public void InvalidateAll() => Interlocked.Increment(ref _generation);

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (SupervisedThread t in _threads.Values)
            {
                t.ThreadPidfd?.Dispose();
            }

            foreach (SupervisedProcess p in _processes.Values)
            {
                p.Close();
            }

            _threads.Clear();
            _processes.Clear();
        }
    }

    /// <summary>Forgets what was read of every thread of a process (they are read again at their next call).</summary>
    public void ForgetThreadsOf(int processId)
    {
        lock (_lock)
        {
            Span<int> stale = stackalloc int[64];
            while (true)
            {
                int count = 0;
                foreach (var (tid, thread) in _threads)
                {
                    if (thread.Process.ProcessId == processId && count < stale.Length)
                    {
                        stale[count++] = tid;
                    }
                }

                for (int i = 0; i < count; i++)
                {
                    ForgetThread(stale[i]);
                }

                if (count < stale.Length)
                {
                    return;
                }
            }
        }
    }

    private SupervisedProcess? ProcessEntry(int processId, Scratch s)
    {
        if (_processes.TryGetValue(processId, out SupervisedProcess? existing))
        {
            if (!existing.MemoryStale)
            {
                return existing;
            }

            _processes.Remove(processId);
            existing.Close();
        }

        ProcFs.Format(s.Proc2, processId, "mem"u8);
        int memory;
        fixed (byte* p = s.Proc2)
        {
            memory = Libc.OpenAt(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        }

        if (memory < 0)
        {
            return null;
        }

        int pidfd = Pidfd.Open(processId);
        if (pidfd < 0)
        {
            Libc.CloseOwned(memory);
            return null;
        }

        var process = new SupervisedProcess(processId, new SafeFileHandle(memory, ownsHandle: true), new SafeFileHandle(pidfd, ownsHandle: true));
        _processes[processId] = process;
        return process;
    }

    private static bool InInitialUserNamespace(int tid, Scratch s)
    {
        ProcFs.Format(s.Proc2, tid, "ns/user"u8);
        Span<byte> link = stackalloc byte[64];
        fixed (byte* p = s.Proc2)
        fixed (byte* l = link)
        {
            nint n = Libc.ReadLinkAt(Libc.AT_FDCWD, p, l, (nuint)link.Length);
            return n > 0 && link[..(int)n].SequenceEqual(OwnUserNamespace);
        }
    }

    /// <summary>True when the thread's root is the supervisor's root directory on the same mount (so the same mount namespace).</summary>
    private static bool HasKernelRoot(int tid, Scratch s)
    {
        ProcFs.Format(s.Proc2, tid, "root"u8);
        fixed (byte* p = s.Proc2)
        {
            if (FileFacts.Statx(Libc.AT_FDCWD, p, 0, FileFacts.STATX_INO | FileFacts.STATX_MNT_ID_UNIQUE, out StatxBuffer root) != 0)
            {
                return false;
            }

            return root.Ino == KernelRoot.Ino && root.DevMajor == KernelRoot.DevMajor && root.DevMinor == KernelRoot.DevMinor
                && root.MountId == KernelRoot.MountId;
        }
    }

    private static SafeFileHandle? OpenThreadPidfd(int tid)
    {
        const int PIDFD_THREAD = Libc.O_EXCL;
        long fd = Libc.Syscall(Sys.PidfdOpen, tid, PIDFD_THREAD, 0, 0, 0, 0);
        return fd < 0 ? null : new SafeFileHandle((nint)fd, ownsHandle: true);
    }

    private static bool Exited(SafeFileHandle pidfd)
    {
        var poll = new PollFd { Fd = (int)pidfd.DangerousGetHandle(), Events = Libc.POLLIN };
        return Libc.Poll(&poll, 1, 0) != 0;
    }

    private static byte[] ReadOwnUserNamespace()
    {
        byte* path = stackalloc byte[32];
        ReadOnlySpan<byte> text = "/proc/self/ns/user\0"u8;
        text.CopyTo(new Span<byte>(path, 32));
        byte* link = stackalloc byte[64];
        nint n = Libc.ReadLinkAt(Libc.AT_FDCWD, path, link, 64);
        return n > 0 ? new Span<byte>(link, (int)n).ToArray() : [];
    }

    private static int CountOwnFilters()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/thread-self/status"))
            {
                if (line.StartsWith("Seccomp_filters:", StringComparison.Ordinal))
                {
                    return int.Parse(line.AsSpan(16).Trim(), System.Globalization.CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }

    private static StatxBuffer StatRoot()
    {
        byte* root = stackalloc byte[2];
        root[0] = (byte)'/';
        root[1] = 0;
        _ = FileFacts.Statx(Libc.AT_FDCWD, root, 0, FileFacts.STATX_INO | FileFacts.STATX_MNT_ID_UNIQUE, out StatxBuffer buffer);
        return buffer;
    }
}

/// <summary>The fields of /proc/TID/status that say who a thread is and what it may do.</summary>
internal ref struct ThreadStatus
{
    public int ProcessId;
    public int Parent;
    public uint RealUser;
    public uint FileSystemUser;
    public uint FileSystemGroup;
    public ulong EffectiveCapabilities;
    public bool NoNewPrivileges;
    public int SeccompFilters;
    public uint Umask;
    public int GroupCount;
    private int _groupsAt;
    private int _groupsLength;

    /// <summary>Parses a status file; false when a field that must be there is missing.</summary>
    public static bool TryParse(ReadOnlySpan<byte> status, out ThreadStatus result)
    {
        result = default;
        if (!Number(status, "Tgid:"u8, out long tgid) || !Number(status, "PPid:"u8, out long ppid)
            || !Ids(status, "Uid:"u8, out uint ruid, out uint fsuid) || !Ids(status, "Gid:"u8, out _, out uint fsgid)
            || !Hex(status, "CapEff:"u8, out ulong capEff))
        {
            return false;
        }

        result.ProcessId = (int)tgid;
        result.Parent = (int)ppid;
        result.RealUser = ruid;
        result.FileSystemUser = fsuid;
        result.FileSystemGroup = fsgid;
        result.EffectiveCapabilities = capEff;
        result.NoNewPrivileges = Number(status, "NoNewPrivs:"u8, out long nnp) && nnp != 0;
        result.SeccompFilters = Number(status, "Seccomp_filters:"u8, out long filters) ? (int)filters : 0;
        result.Umask = ProcFs.TryField(status, "Umask:"u8, 8, out long umask) ? (uint)umask : 0022;
        int at = Field(status, "Groups:"u8);
        if (at >= 0)
        {
            ReadOnlySpan<byte> line = status[at..];
            int end = line.IndexOf((byte)'\n');
            line = end < 0 ? line : line[..end];
            result._groupsAt = at;
            result._groupsLength = line.Length;
            foreach (Range r in line.Split((byte)' '))
            {
                ReadOnlySpan<byte> part = line[r].Trim("\t "u8);
                if (part.Length > 0)
                {
                    result.GroupCount++;
                }
            }
        }

        return true;
    }

    /// <summary>Writes the supplementary groups (<see cref="GroupCount"/> of them) from the same status text.</summary>
    public readonly void CopyGroups(ReadOnlySpan<byte> status, Span<uint> groups)
    {
        ReadOnlySpan<byte> line = status.Slice(_groupsAt, _groupsLength);
        int i = 0;
        foreach (Range r in line.Split((byte)' '))
        {
            ReadOnlySpan<byte> part = line[r].Trim("\t "u8);
            if (part.Length > 0 && i < groups.Length && Utf8Parser.TryParse(part, out uint g, out _))
            {
                groups[i++] = g;
            }
        }
    }

    /// <summary>Where the value of "Key:" starts (after the key), or -1.</summary>
    private static int Field(ReadOnlySpan<byte> status, ReadOnlySpan<byte> key)
    {
        int from = 0;
        while (true)
        {
            int at = status[from..].IndexOf(key);
            if (at < 0)
            {
                return -1;
            }

            at += from;
            if (at == 0 || status[at - 1] == (byte)'\n')
            {
                return at + key.Length;
            }

            from = at + 1;
        }
    }

    private static bool Number(ReadOnlySpan<byte> status, ReadOnlySpan<byte> key, out long value)
    {
        value = 0;
        int at = Field(status, key);
        return at >= 0 && Utf8Parser.TryParse(status[at..].TrimStart("\t "u8), out value, out _);
    }

    /// <summary>"Uid:\treal\teffective\tsaved\tfs": the real and the file-system id.</summary>
    private static bool Ids(ReadOnlySpan<byte> status, ReadOnlySpan<byte> key, out uint real, out uint fs)
    {
        real = fs = 0;
        int at = Field(status, key);
        if (at < 0)
        {
            return false;
        }

        ReadOnlySpan<byte> rest = status[at..];
        for (int i = 0; i < 4; i++)
        {
            rest = rest.TrimStart("\t "u8);
            if (!Utf8Parser.TryParse(rest, out uint id, out int used))
            {
                return false;
            }

            if (i == 0)
            {
                real = id;
            }

            fs = id;
            rest = rest[used..];
        }

        return true;
    }

    private static bool Hex(ReadOnlySpan<byte> status, ReadOnlySpan<byte> key, out ulong value)
    {
        value = 0;
        int at = Field(status, key);
        return at >= 0 && Utf8Parser.TryParse(status[at..].TrimStart("\t "u8), out value, out _, 'x');
    }
}
