using Palisade.Interop;

namespace Palisade.Host.Linux.Boundary;

/// <summary>
/// The kernel's own tasks: the process the kernel runs in (the supervisor), each of its threads, and its process group;
/// and the driver host processes of isolated drivers, their threads and groups (<see cref="Kernel.Isolation.DriverHostProcesses"/>).
/// Answers are read from Linux at each question, never cached: threads come and go (the runtime's, the supervisor's
/// receiving threads) and a pid once the kernel's may be a guest's later.
/// </summary>
internal static class KernelTasks
{
    /// <summary>The kernel's process id.</summary>
    public static readonly int ProcessId = Environment.ProcessId;

    /// <summary>The kernel's process group (guests run in a group of their own, see SupervisedGuest).</summary>
    public static int ProcessGroup => (int)Libc.Syscall(Sys.Getpgid, 0, 0, 0, 0, 0, 0);

    /// <summary>
    /// True when <paramref name="id"/> names the kernel's process or one of its threads (a tid works wherever a pid
    /// does in kill, ptrace, /proc and the rest). One system call (tgkill with signal 0, which delivers nothing) unless
    /// it is the process id itself; never for 0 or negative ids.
    /// </summary>
    public static bool Includes(int id) =>
        id > 0 && (id == ProcessId || Libc.Syscall(Sys.Tgkill, ProcessId, id, 0, 0, 0, 0) == 0 || Kernel.Isolation.DriverHostProcesses.Includes(id));

    /// <summary>True when <paramref name="processGroup"/> is the kernel's process group or a driver host's.</summary>
    public static bool IsKernelGroup(int processGroup) =>
        processGroup > 0 && (processGroup == ProcessGroup || Kernel.Isolation.DriverHostProcesses.IsHostGroup(processGroup));

    /// <summary>The kernel's real user id.</summary>
    public static readonly uint UserId = Libc.GetUid();

    /// <summary>
    /// How guest thread <paramref name="thread"/>'s credentials stand for Linux's signal permissions through a
    /// descriptor (SIGIO), which look only at the sender's real and effective uid: whether they can reach the kernel at
    /// all, and whether the kernel's own credentials are equivalent to them.
    /// </summary>
    public static SignalCredentials CredentialsAgainstKernel(int thread, Span<byte> proc, Span<byte> status)
    {
        int length = Supervision.ProcFs.ReadStatus(thread, proc, status);
        int at = length > 0 ? status[..length].IndexOf("\nUid:"u8) : -1;
        if (at < 0)
        {
            return SignalCredentials.Mixed;
        }

        ReadOnlySpan<byte> line = status[(at + 5)..length];
        line = line[..(line.IndexOf((byte)'\n') is int end and >= 0 ? end : line.Length)];
        Span<uint> ids = stackalloc uint[2];
        for (int i = 0; i < 2; i++)
        {
            line = line.TrimStart("\t "u8);
            if (!System.Buffers.Text.Utf8Parser.TryParse(line, out ids[i], out int used))
            {
                return SignalCredentials.Mixed;
            }

            line = line[used..];
        }

        uint real = ids[0], effective = ids[1];
        if (effective == 0 || (real == UserId && effective == UserId))
        {
            return SignalCredentials.SameAsKernel;
        }

        return real == UserId || effective == UserId ? SignalCredentials.Mixed : SignalCredentials.CannotReachKernel;
    }
}

/// <summary>What <see cref="KernelTasks.CredentialsAgainstKernel"/> found.</summary>
internal enum SignalCredentials
{
    /// <summary>Linux's SIGIO permission keeps them from the kernel whatever the owner is.</summary>
    CannotReachKernel,

    /// <summary>They could reach the kernel, and the kernel's credentials are equivalent to them for that permission.</summary>
    SameAsKernel,

    /// <summary>They could reach the kernel, and the kernel's are not equivalent (or they could not be read).</summary>
    Mixed,
}
