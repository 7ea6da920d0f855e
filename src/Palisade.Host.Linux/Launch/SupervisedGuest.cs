using System.Runtime.InteropServices;
using Palisade.Interop;
using Palisade.Host.Linux.Mediation;
using Palisade.Host.Linux.Filtering;
using Palisade.Host.Linux.Supervision;

namespace Palisade.Host.Linux.Launch;

/// <summary>How to re-run Palisade's own executable in launcher mode.</summary>
/// <param name="Executable">The executable (the palisade apphost, or dotnet).</param>
/// <param name="PrefixArguments">Arguments before the verb (palisade.dll when run through dotnet).</param>
internal sealed record LaunchCommand(string Executable, IReadOnlyList<string> PrefixArguments)
{
    /// <summary>The command of the running process itself (the CLI).</summary>
    public static LaunchCommand OfCurrentProcess()
    {
        string executable = Environment.ProcessPath ?? throw new InvalidOperationException("The path of the running executable is unknown.");
        bool viaDotnet = Path.GetFileNameWithoutExtension(executable) == "dotnet";
        return new LaunchCommand(executable, viaDotnet ? [Environment.GetCommandLineArgs()[0]] : []);
    }
}

/// <summary>
/// A guest program tree under supervision. <see cref="Start"/> spawns the launcher (posix_spawn, with the
/// control socket as descriptor 3 and the default signal state), takes the launcher's listener with
/// pidfd_getfd, starts the <see cref="Supervisor"/> and lets the launcher exec the program.
/// Standard input, output and error are inherited, so the program sees the caller's terminal.
/// </summary>
internal sealed unsafe class SupervisedGuest : IDisposable
{
    private readonly int _pidfd;
    private readonly ForegroundTerminal? _terminal;
    private readonly RunCgroup? _cgroup;
    private int _exitCode = -1;

    private SupervisedGuest(int pid, int pidfd, Supervisor supervisor, ForegroundTerminal? terminal, RunCgroup? cgroup)
    {
        Pid = pid;
        _pidfd = pidfd;
        Supervisor = supervisor;
        _terminal = terminal;
        _cgroup = cgroup;
    }

    /// <summary>The run's cgroup, or null when the supervisor holds the run's guests as their child subreaper.</summary>
    internal RunCgroup? Cgroup => _cgroup;

    /// <summary>The program's pid (the launcher's, which becomes the program at exec).</summary>
    public int Pid { get; }

    /// <summary>The supervisor serving this tree.</summary>
    internal Supervisor Supervisor { get; }

    /// <summary>
    /// Starts <paramref name="program"/> (looked up in PATH like a shell) with <paramref name="arguments"/>
    /// under <paramref name="mediator"/>. Throws <see cref="InvalidOperationException"/> when the
    /// launcher cannot install the filter.
    /// </summary>
    public static SupervisedGuest Start(LaunchCommand launcher, ISyscallMediator mediator, string program, IReadOnlyList<string> arguments, Action<Exception>? onFault = null) =>
        Start(launcher, mediator, program, arguments, onFault, Containment.Cgroup);

    /// <summary>How a run holds its guests so that they end with it.</summary>
    internal enum Containment
    {
        /// <summary>A cgroup of the run's own when the machine allows, else the child subreaper.</summary>
        Cgroup,

        /// <summary>The child subreaper only (the fallback, chosen by tests to exercise it).</summary>
        Subreaper,
    }

    /// <summary>Starts a guest tree held as <paramref name="containment"/> says.</summary>
    internal static SupervisedGuest Start(LaunchCommand launcher, ISyscallMediator mediator, string program, IReadOnlyList<string> arguments, Action<Exception>? onFault, Containment containment)
    {
        ArgumentNullException.ThrowIfNull(launcher);
        ArgumentNullException.ThrowIfNull(mediator);
        ArgumentNullException.ThrowIfNull(program);
        ArgumentNullException.ThrowIfNull(arguments);

        var argv = new List<string>(launcher.PrefixArguments.Count + arguments.Count + 4) { launcher.Executable };
        argv.AddRange(launcher.PrefixArguments);
        argv.Add(Launcher.Verb);
        argv.Add(((int)mediator.Subscriptions).ToString(System.Globalization.CultureInfo.InvariantCulture));
        argv.Add(program);
        argv.AddRange(arguments);

        int* pair = stackalloc int[2];
        if (Libc.SocketPair(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0, pair) < 0)
        {
            throw new InvalidOperationException($"socketpair failed: errno {Libc.LastError}");
        }

        int ours = pair[0], theirs = pair[1];
        int pid = SpawnLauncher(argv, theirs);
        Libc.CloseOwned(theirs);
        if (pid < 0)
        {
            Libc.CloseOwned(ours);
            throw new InvalidOperationException($"posix_spawn of the launcher {launcher.Executable} failed: errno {-pid}");
        }

        // Every guest ends with the run: the launcher goes into the run's cgroup before it executes the program, so each
        // process it starts is in it; where no cgroup can be had, the supervisor becomes the guests' child subreaper.
        RunCgroup? cgroup = containment == Containment.Cgroup ? RunCgroup.TryCreate(out _) : null;
        if (cgroup is not null && !cgroup.Adopt(pid))
        {
            cgroup.Dispose();
            cgroup = null;
        }

        if (cgroup is null)
        {
            _ = Libc.Prctl(Libc.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }

        GuestTree.Started(pid, cgroup);

        long pidfd = Libc.Syscall(Sys.PidfdOpen, pid, 0, 0, 0, 0, 0);
        try
        {
            int remote;
            nint got = Libc.Read(ours, &remote, sizeof(int));
            if (got != sizeof(int) || pidfd < 0)
            {
                throw new InvalidOperationException("The launcher exited before handing over its seccomp listener (see its standard error).");
            }

            long listener = Libc.Syscall(Sys.PidfdGetfd, pidfd, remote, 0, 0, 0, 0);
            if (listener < 0)
            {
                throw new InvalidOperationException($"pidfd_getfd of the launcher's listener failed: errno {Libc.LastError}");
            }

            var supervisor = new Supervisor((int)listener, mediator, onFault);
            if (cgroup is not null)
            {
                supervisor.ConfineTo(cgroup);
            }

            supervisor.Start();

            // The guests' own process group (made at spawn) gets the terminal's foreground, as a shell's job would.
            ForegroundTerminal? terminal = ForegroundTerminal.HandTo(pid);
            byte go = (byte)'g';
            _ = Libc.Write(ours, &go, 1);
            return new SupervisedGuest(pid, (int)pidfd, supervisor, terminal, cgroup);
        }
        catch
        {
            _ = Libc.Kill(pid, Libc.SIGKILL);
            cgroup?.Dispose();
            GuestTree.Ended(pid);
            if (pidfd >= 0)
            {
                SigInfo info;
                _ = Libc.WaitId(Libc.P_PIDFD, (int)pidfd, &info, Libc.WEXITED);
                Libc.CloseOwned((int)pidfd);
            }

            throw;
        }
        finally
        {
            Libc.CloseOwned(ours);
        }
    }

    /// <summary>
    /// Waits for the program to exit and returns its status as a shell reports it: the exit code, or
    /// 128 + the signal number when a signal killed it.
    /// </summary>
    public int WaitForExit()
    {
        if (_exitCode >= 0)
        {
            return _exitCode;
        }

        SigInfo info;
        while (true)
        {
            if (Libc.WaitId(Libc.P_PIDFD, _pidfd, &info, Libc.WEXITED | Libc.WSTOPPED) < 0)
            {
                int error = Libc.LastError;
                if (error != Errno.EINTR)
                {
                    throw new InvalidOperationException($"waitid failed: errno {error}");
                }

                continue;
            }

            if (info.Code is Libc.CLD_EXITED or Libc.CLD_KILLED or Libc.CLD_DUMPED)
            {
                break;
            }

            // ^Z (or any stop) of the program: with the terminal, palisade stops with it as its job would.
            if (info.Code == Libc.CLD_STOPPED)
            {
                _terminal?.StopWithGuests();
            }
        }

        _exitCode = info.Code == Libc.CLD_EXITED ? info.Status : 128 + info.Status;
        return _exitCode;
    }

    /// <summary>Sends <paramref name="signal"/> to the program.</summary>
    public void Signal(int signal) => _ = Libc.Syscall(Sys.PidfdSendSignal, _pidfd, signal, 0, 0, 0, 0);

    /// <summary>
    /// Ends the run: every guest still running (the program, if it has not exited, and whatever it left behind, a
    /// double-forked daemon included) is killed; the terminal goes back to palisade's group and the pidfd is released.
    /// </summary>
    public void Dispose()
    {
        if (_cgroup is not null)
        {
            _cgroup.Dispose();
        }
        else
        {
            _ = Libc.Kill(Pid, Libc.SIGKILL);
            _ = GuestTree.KillOrphansOf(Pid);
        }

        GuestTree.Ended(Pid);
        _terminal?.Dispose();
        Libc.CloseOwned(_pidfd);
    }

    private static int SpawnLauncher(List<string> argv, int control)
    {
        byte* actions = stackalloc byte[Spawn.OpaqueSize];
        byte* attributes = stackalloc byte[Spawn.OpaqueSize];
        byte* all = stackalloc byte[Spawn.SigSetSize];
        byte* none = stackalloc byte[Spawn.SigSetSize];
        new Span<byte>(none, Spawn.SigSetSize).Clear();
        _ = Spawn.SigFillSet(all);
        _ = Spawn.SigDelSet(all, Libc.SIGKILL);
        _ = Spawn.SigDelSet(all, 19 /* SIGSTOP */);

        // dup2 onto itself would keep O_CLOEXEC; move the descriptor first in that unlikely case.
        int source = control == Launcher.ControlFd ? Libc.Fcntl(control, Libc.F_DUPFD_CLOEXEC, 10) : control;
        byte** args = Spawn.AllocStrings(argv);
        try
        {
            _ = Spawn.FileActionsInit(actions);
            _ = Spawn.FileActionsAddDup2(actions, source, Launcher.ControlFd);
            _ = Spawn.AttrInit(attributes);
            // A process group of its own: no group signal of the guests (kill(0), a SIGIO to their group) and no signal
            // of the terminal reaches the kernel (docs/security.md).
            _ = Spawn.AttrSetFlags(attributes, Spawn.POSIX_SPAWN_SETSIGDEF | Spawn.POSIX_SPAWN_SETSIGMASK | Spawn.POSIX_SPAWN_SETPGROUP);
            _ = Spawn.AttrSetProcessGroup(attributes, 0);
            _ = Spawn.AttrSetSigDefault(attributes, all);
            _ = Spawn.AttrSetSigMask(attributes, none);
            int pid;
            int error = Spawn.PosixSpawn(&pid, args[0], actions, attributes, args, Spawn.Environ);
            return error != 0 ? -error : pid;
        }
        finally
        {
            _ = Spawn.FileActionsDestroy(actions);
            _ = Spawn.AttrDestroy(attributes);
            Spawn.FreeStrings(args);
            if (source != control)
            {
                Libc.CloseOwned(source);
            }
        }
    }
}
