using System.Runtime.InteropServices;

namespace Palisade.Interop;

/// <summary>
/// The signal the supervisor sends to one of its own threads to cut short a system call it waits in (an open of a FIFO
/// whose guest has died): its handler does nothing and is installed without SA_RESTART, so the waiting call returns
/// EINTR. The handler is libc's abs(3), a pure function of its int argument: delivering the signal runs no code with an
/// effect. Real-time signal SIGRTMAX-3, which neither the .NET runtime (SIGRTMIN) nor glibc (32, 33) uses.
/// </summary>
internal static unsafe partial class InterruptSignal
{
    private const string Lib = "libc";
    private const int SigsetBytes = 8;

    private static readonly Lock InstallLock = new();
    private static bool s_installed;

    /// <summary>The signal number.</summary>
    public static int Number { get; } = RtMax() - 3;

    /// <summary>Installs the handler (once per process); false when Linux refused it.</summary>
    public static bool EnsureInstalled()
    {
        lock (InstallLock)
        {
            if (s_installed)
            {
                return true;
            }

            nint abs = NativeLibrary.GetExport(NativeLibrary.Load("libc.so.6"), "abs");
            byte* action = stackalloc byte[SigactionSize];
            new Span<byte>(action, SigactionSize).Clear();
            *(nint*)action = abs;

            // sa_mask (at 8) stays empty; sa_flags (at 136) has no SA_RESTART.
            s_installed = Sigaction(Number, action, null) == 0;
            return s_installed;
        }
    }

    /// <summary>Sends the signal to thread <paramref name="tid"/> of this process; false when it is gone.</summary>
    public static bool Send(int tid) => Libc.Syscall(Sys.Tgkill, Environment.ProcessId, tid, Number, 0, 0, 0) == 0;

    /// <summary>
    /// Takes every instance of the signal still pending for the calling thread (sent, not yet delivered; a real-time
    /// signal queues), so that none cuts short a later call of this thread; does nothing when none is pending.
    /// </summary>
    public static void Absorb()
    {
        ulong set = 1UL << (Number - 1);
        long* zero = stackalloc long[2];
        zero[0] = 0;
        zero[1] = 0;
        long taken;
        do
        {
            taken = Libc.Syscall(RtSigtimedwait, (long)&set, 0, (long)zero, SigsetBytes, 0, 0);
        }
        while (taken == Number);
    }

    /// <summary>glibc's struct sigaction on x86-64: handler (8), sa_mask (128), sa_flags (4, padded to 8), sa_restorer (8).</summary>
    private const int SigactionSize = 152;

    private const int RtSigtimedwait = 128;

    [LibraryImport(Lib, EntryPoint = "sigaction", SetLastError = true)]
    private static partial int Sigaction(int signal, void* action, void* old);

    [LibraryImport(Lib, EntryPoint = "__libc_current_sigrtmax")]
    private static partial int RtMax();
}
