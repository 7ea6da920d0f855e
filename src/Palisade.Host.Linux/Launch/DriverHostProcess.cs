using System.Globalization;
using System.Runtime.InteropServices;
using Palisade.Interop;
using Palisade.Kernel.Isolation;

namespace Palisade.Host.Linux.Launch;

/// <summary>
/// <c>palisade __driverhost PACKAGE HOME FLAVOR KERNEL_PID UID DIGEST</c>: the process an isolated driver runs in, started by the
/// kernel (IsolatedDriver) with its socket on descriptor 3 and no environment but the runtime's diagnostics
/// switch. Before any of the package's code loads it confines itself, for good and for every thread:
/// <list type="bullet">
/// <item>when started as root, the uid and gid <c>UID</c> (per run, not 0, not a guest's), no supplementary groups, and so
/// no capabilities (checked: it refuses to go on with any left);</item>
/// <item>not dumpable, and <c>no_new_privs</c>;</item>
/// <item>a seccomp filter of its own (<see cref="Filter"/>): no ptrace, process_vm_readv/writev, pidfd_open, pidfd_getfd,
/// pidfd_send_signal, tkill, process_madvise or kcmp; kill, tgkill, rt_sigqueueinfo and rt_tgsigqueueinfo only to its own
/// pid; any other ABI than x86-64 ends it.</item>
/// </list>
/// It dies with the kernel (PR_SET_PDEATHSIG) and when the kernel closes the socket.
/// </summary>
internal static unsafe partial class DriverHostProcess
{
    private const int EPERM = 1;

    /// <summary>Runs the verb; its exit status.</summary>
    public static int Run(string[] args)
    {
        if (args.Length != 7
            || !int.TryParse(args[4], NumberStyles.None, CultureInfo.InvariantCulture, out int kernel)
            || !int.TryParse(args[5], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int id))
        {
            Console.Error.WriteLine("usage: palisade __driverhost PACKAGE HOME FLAVOR KERNEL_PID UID DIGEST (started by the kernel only)");
            return 2;
        }

        if (Libc.Prctl(Libc.PR_SET_PDEATHSIG, Libc.SIGKILL, 0, 0, 0) != 0 || GetParentPid() != kernel)
        {
            Console.Error.WriteLine("palisade: driver host: the kernel that started it is gone");
            return 125;
        }

        return DriverHostEntry.Run(args[1], args[2], args[3], args[6], () => Confine(id, kernel));
    }

    /// <summary>Gives up everything but what a driver needs; ends the process when any step fails.</summary>
    private static void Confine(int id, int kernel)
    {
        string? failure = null;
        if (id >= 0)
        {
            if (SetGroups(0, null) != 0 || SetResGid(id, id, id) != 0 || SetResUid(id, id, id) != 0)
            {
                failure = "cannot take uid/gid " + id + ": errno " + Marshal.GetLastPInvokeError();
            }
            else if (Libc.GetUid() != (uint)id || Libc.GetEUid() != (uint)id || EffectiveCapabilities() != "0000000000000000")
            {
                failure = "the uid change left privileges behind";
            }
        }

        if (failure is null && Libc.Prctl(Libc.PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        {
            failure = "prctl(PR_SET_DUMPABLE) failed: errno " + Libc.LastError;
        }

        if (failure is null && Libc.Prctl(Libc.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        {
            failure = "prctl(PR_SET_NO_NEW_PRIVS) failed: errno " + Libc.LastError;
        }

        if (failure is null)
        {
            SockFilter[] filter = Filter(Environment.ProcessId);
            fixed (SockFilter* instructions = filter)
            {
                var program = new SockFprog { Length = (ushort)filter.Length, Filter = instructions };
                long r = Libc.Syscall(Sys.Seccomp, Seccomp.SECCOMP_SET_MODE_FILTER, 1 /* SECCOMP_FILTER_FLAG_TSYNC */, (long)&program, 0, 0, 0);
                if (r != 0)
                {
                    failure = "its seccomp filter could not be installed on every thread: " + (r < 0 ? "errno " + Libc.LastError : "thread " + r);
                }
            }
        }

        if (failure is not null)
        {
            Console.Error.WriteLine("palisade: driver host for kernel " + kernel + ": " + failure + "; the driver is not loaded");
            Environment.Exit(125);
        }
    }

    /// <summary>
    /// The host's seccomp filter: errno EPERM for the calls that reach into another process (ptrace, process_vm_*, the
    /// pidfd calls, kcmp, process_madvise, tkill) and for signals to any pid but <paramref name="self"/>; the process
    /// ends on an ABI other than x86-64 (x32 numbers included).
    /// </summary>
    public static SockFilter[] Filter(int self)
    {
        ReadOnlySpan<uint> denied = [101 /* ptrace */, 310 /* process_vm_readv */, 311 /* process_vm_writev */, 312 /* kcmp */,
            434 /* pidfd_open */, 438 /* pidfd_getfd */, 424 /* pidfd_send_signal */, 440 /* process_madvise */, 200 /* tkill */];
        ReadOnlySpan<uint> signals = [62 /* kill */, 234 /* tgkill */, 129 /* rt_sigqueueinfo */, 297 /* rt_tgsigqueueinfo */];
        const ushort Load = 0x20, Equal = 0x15, AtLeast = 0x35, Return = 0x06;
        var f = new List<SockFilter>();
        int denyAt = 4 + denied.Length + signals.Length + 4;
        int killAt = denyAt + 1;
        int checkAt = denyAt - 3;
        f.Add(new SockFilter { Code = Load, K = Seccomp.DATA_OFFSET_ARCH });
        f.Add(new SockFilter { Code = Equal, JumpTrue = 0, JumpFalse = (byte)(killAt - 2), K = Seccomp.AUDIT_ARCH_X86_64 });
        f.Add(new SockFilter { Code = Load, K = Seccomp.DATA_OFFSET_NR });
        f.Add(new SockFilter { Code = AtLeast, JumpTrue = (byte)(denyAt - 4), JumpFalse = 0, K = Seccomp.X32_SYSCALL_BIT });
        foreach (uint nr in denied)
        {
            f.Add(new SockFilter { Code = Equal, JumpTrue = (byte)(denyAt - f.Count - 1), JumpFalse = 0, K = nr });
        }

        foreach (uint nr in signals)
        {
            f.Add(new SockFilter { Code = Equal, JumpTrue = (byte)(checkAt - f.Count - 1), JumpFalse = 0, K = nr });
        }

        f.Add(new SockFilter { Code = Return, K = Seccomp.SECCOMP_RET_ALLOW });

        // The pid argument of the four signal calls is their first, an int: its low word decides.
        f.Add(new SockFilter { Code = Load, K = Seccomp.DATA_OFFSET_ARGS });
        f.Add(new SockFilter { Code = Equal, JumpTrue = 0, JumpFalse = 1, K = (uint)self });
        f.Add(new SockFilter { Code = Return, K = Seccomp.SECCOMP_RET_ALLOW });
        f.Add(new SockFilter { Code = Return, K = Seccomp.SECCOMP_RET_ERRNO | EPERM });
        f.Add(new SockFilter { Code = Return, K = Seccomp.SECCOMP_RET_KILL_PROCESS });
        return [.. f];
    }

    private static string EffectiveCapabilities()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("CapEff:", StringComparison.Ordinal))
            {
                return line[7..].Trim();
            }
        }

        return "unknown";
    }

    [LibraryImport("libc", EntryPoint = "getppid")]
    private static partial int GetParentPid();

    // The C library's own calls: they change the credentials of every thread of the process, not only the caller's.
    [LibraryImport("libc", EntryPoint = "setgroups", SetLastError = true)]
    private static partial int SetGroups(nuint size, uint* list);

    [LibraryImport("libc", EntryPoint = "setresgid", SetLastError = true)]
    private static partial int SetResGid(int real, int effective, int saved);

    [LibraryImport("libc", EntryPoint = "setresuid", SetLastError = true)]
    private static partial int SetResUid(int real, int effective, int saved);
}
