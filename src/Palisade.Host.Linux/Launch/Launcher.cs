using Palisade.Interop;
using Palisade.Host.Linux.Filtering;

namespace Palisade.Host.Linux.Launch;

/// <summary>
/// The launcher: Palisade's own executable re-run in the hidden <c>__launch</c> mode (<see cref="LauncherProcess"/>),
/// as soon as the program is known, so that its runtime starts while the kernel boots. It prepares everything it
/// will call, then reads from descriptor 3 the system call families to trap (sent once the drivers are loaded),
/// installs the seccomp filter on its main thread with a new listener, hands the listener's number to the supervisor
/// over descriptor 3, waits for "go", closes every trace of the listener and execs the program, so that the program's very first exec is mediated and the guest
/// never holds the listener. Between installing the filter and exec it only calls functions it has
/// already called once (so no lazy binding opens a library while the supervisor cannot yet answer).
/// </summary>
internal static unsafe class Launcher
{
    /// <summary>The hidden verb.</summary>
    public const string Verb = "__launch";

    /// <summary>The descriptor on which the launcher talks to its supervisor.</summary>
    public const int ControlFd = 3;

    private const int ExitCannotExecute = 126;
    private const int ExitNotFound = 127;

    /// <summary>
    /// Names, separated by spaces, of environment variables that the <c>palisade</c> wrapper script or
    /// <see cref="KernelProcess"/> set for palisade itself (where to find the sample drivers, the runtime's tiering delay,
    /// its diagnostics switch): the launcher removes them, and this one, or gives back the caller's value kept under
    /// <see cref="KernelProcess.OriginalPrefix"/>, so that the guest gets the caller's environment unchanged.
    /// </summary>
    public const string WrapperEnvironment = "PALISADE_WRAPPER_ENV";

    /// <summary>
    /// Runs the launcher: <c>__launch PROGRAM [ARGS...]</c>, then the families as a 32-bit integer on descriptor 3.
    /// Returns only on failure; exits quietly when descriptor 3 ends before the families (the run did not start).
    /// </summary>
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length < 2 || args[0] != Verb)
        {
            Console.Error.WriteLine("palisade: __launch is internal; use 'palisade run'.");
            return 2;
        }

        RemoveWrapperEnvironment();
        byte** argv = Spawn.AllocStrings(args[1..]);
        byte* message = (byte*)System.Runtime.InteropServices.Marshal.StringToCoTaskMemUTF8($"palisade: cannot execute {args[1]}: ");

        // The filter builder's code is compiled now, while the kernel boots, not once the families arrive.
        _ = FilterBuilder.Build(SyscallFamilies.FileOpen);
        int families;
        if (Libc.ReadRestarting(ControlFd, &families, sizeof(int)) != sizeof(int))
        {
            Libc.Syscall(Sys.ExitGroup, ExitCannotExecute, 0, 0, 0, 0, 0);
        }

        SockFilter[] filter = FilterBuilder.Build((SyscallFamilies)families);

        // Bind every native call used after the filter is on, while nothing is mediated yet.
        byte go = 0;
        _ = Libc.WriteRestarting(-1, &go, 0);
        _ = Libc.ReadRestarting(-1, &go, 0);
        _ = Libc.Close(-1);
        _ = Libc.ExecVp(&go, argv);
        _ = Libc.Syscall(Sys.Getpid, 0, 0, 0, 0, 0, 0);
        _ = Libc.LastError;
        _ = ThreadCredentials.GetCapabilities(out _, out _, out _);

        // Guests see the default signal state a shell gives them, not the runtime's (it ignores SIGPIPE).
        _ = Spawn.Signal(Spawn.SIGPIPE, 0);

        // Linux lets a process install a seccomp filter when it holds CAP_SYS_ADMIN or has set no_new_privs. Set it
        // only when it is needed: with it, exec ignores set-id bits and file capabilities, so a guest could not run
        // sudo, su or ping as it could without Palisade (docs/security.md, "Exec of set-id images").
        bool mayInstall = ThreadCredentials.GetCapabilities(out ulong effective, out _, out _) == 0
            && (effective & (1UL << ThreadCredentials.CAP_SYS_ADMIN)) != 0;
        if (!mayInstall && Libc.Prctl(Libc.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        {
            Console.Error.WriteLine($"palisade: prctl(PR_SET_NO_NEW_PRIVS) failed: errno {Libc.LastError}");
            return ExitCannotExecute;
        }

        byte* empty = stackalloc byte[Spawn.SigSetSize];
        new Span<byte>(empty, Spawn.SigSetSize).Clear();
        _ = Spawn.PthreadSigMask(Spawn.SIG_SETMASK, empty, null);

        int listener = Seccomp.InstallWithListener(filter);
        if (listener < 0)
        {
            Console.Error.WriteLine($"palisade: seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER) failed: errno {-listener}");
            return ExitCannotExecute;
        }

        if (Libc.WriteRestarting(ControlFd, &listener, sizeof(int)) != sizeof(int) || Libc.ReadRestarting(ControlFd, &go, 1) != 1)
        {
            Libc.Syscall(Sys.ExitGroup, ExitCannotExecute, 0, 0, 0, 0, 0);
        }

        _ = Libc.Close(listener);
        _ = Libc.Close(ControlFd);
        _ = Libc.ExecVp(argv[0], argv);
        int error = Libc.LastError;
        nint length = 0;
        while (message[length] != 0)
        {
            length++;
        }

        _ = Libc.Write(2, message, (nuint)length);
        var reason = error == Errno.ENOENT ? "not found\n"u8 : "permission denied or not executable\n"u8;
        fixed (byte* r = reason)
        {
            _ = Libc.Write(2, r, (nuint)reason.Length);
        }

        Libc.Syscall(Sys.ExitGroup, error == Errno.ENOENT ? ExitNotFound : ExitCannotExecute, 0, 0, 0, 0, 0);
        return ExitCannotExecute;
    }

    private static void RemoveWrapperEnvironment()
    {
        string? added = Environment.GetEnvironmentVariable(WrapperEnvironment);
        if (added is null)
        {
            return;
        }

        foreach (string name in added.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            // A variable palisade overrode for itself gets the caller's value back; one it added goes.
            string? original = Environment.GetEnvironmentVariable(KernelProcess.OriginalPrefix + name);
            _ = original is null ? Libc.Unsetenv(name) : Libc.Setenv(name, original, 1);
            _ = Libc.Unsetenv(KernelProcess.OriginalPrefix + name);
        }

        _ = Libc.Unsetenv(WrapperEnvironment);
    }
}
