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
/// A guest program tree under supervision. <c>Start</c> takes a launcher (<see cref="LauncherProcess"/>, spawned
/// ahead or by <c>Start</c> itself), tells it what to trap, takes its listener with pidfd_getfd, starts the
/// <see cref="Supervisor"/> and lets the launcher exec the program.
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
        ArgumentNullException.ThrowIfNull(mediator);
        using LauncherProcess spawned = LauncherProcess.Spawn(launcher, program, arguments);
        return Start(spawned, mediator, onFault, containment);
    }

    /// <summary>
    /// Starts the guest tree of a launcher spawned ahead (<see cref="LauncherProcess.Spawn"/>) under
    /// <paramref name="mediator"/>: the launcher's filter traps the mediator's families. The launcher is handed over to
    /// the run when this returns; on a throw it is left to its owner, who disposes it.
    /// </summary>
    public static SupervisedGuest Start(LauncherProcess launcher, ISyscallMediator mediator, Action<Exception>? onFault = null) =>
        Start(launcher, mediator, onFault, Containment.Cgroup);

    private static SupervisedGuest Start(LauncherProcess launcher, ISyscallMediator mediator, Action<Exception>? onFault, Containment containment)
    {
        ArgumentNullException.ThrowIfNull(launcher);
        ArgumentNullException.ThrowIfNull(mediator);
        int pid = launcher.Pid;
        if (pid <= 0)
        {
            throw new InvalidOperationException("The launcher was already handed over to a run.");
        }

        // The launcher builds and installs its filter as soon as it has the families; the cgroup is joined meanwhile,
        // before it may execute the program.
        bool sent = launcher.SendFamilies((int)mediator.Subscriptions);

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
            if (pidfd < 0)
            {
                throw new InvalidOperationException(launcher.Describe("pidfd_open"));
            }

            if (!sent)
            {
                throw new InvalidOperationException(launcher.Describe("sending the families"));
            }

            if (!launcher.ReceiveListener(out int remote))
            {
                throw new InvalidOperationException(launcher.Describe("receiving the listener"));
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
            launcher.Go();
            launcher.Release();
            return new SupervisedGuest(pid, (int)pidfd, supervisor, terminal, cgroup);
        }
        catch
        {
            cgroup?.Dispose();
            GuestTree.Ended(pid);
            if (pidfd >= 0)
            {
                Libc.CloseOwned((int)pidfd);
            }

            throw;
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
}
