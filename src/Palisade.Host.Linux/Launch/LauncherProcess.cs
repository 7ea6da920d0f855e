using Palisade.Interop;

namespace Palisade.Host.Linux.Launch;

/// <summary>
/// A launcher started ahead of its supervisor: Palisade's executable in <c>__launch</c> mode, spawned (posix_spawn, the
/// control socket as descriptor 3, the default signal state, a process group of its own) as soon as the program to run
/// is known, so that its runtime starts while the kernel boots and loads its drivers. It waits, filterless, for the
/// system call families to trap; <see cref="SupervisedGuest.Start(LauncherProcess, Mediation.ISyscallMediator, System.Action{System.Exception}?)"/>
/// sends them and takes it over. Disposed before that (a driver refused, the boot failed), the launcher is killed and
/// reaped; it would also exit by itself on the end of its control socket.
/// </summary>
internal sealed unsafe class LauncherProcess : IDisposable
{
    private int _control;
    private int _pid;

    private LauncherProcess(int pid, int control)
    {
        _pid = pid;
        _control = control;
    }

    /// <summary>The launcher's pid (the program's, once it executes).</summary>
    public int Pid => _pid;

    /// <summary>
    /// Spawns the launcher for <paramref name="program"/> (looked up in PATH like a shell) and
    /// <paramref name="arguments"/>. Throws <see cref="InvalidOperationException"/> when it cannot be spawned.
    /// </summary>
    public static LauncherProcess Spawn(LaunchCommand command, string program, IReadOnlyList<string> arguments)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(program);
        ArgumentNullException.ThrowIfNull(arguments);

        var argv = new List<string>(command.PrefixArguments.Count + arguments.Count + 3) { command.Executable };
        argv.AddRange(command.PrefixArguments);
        argv.Add(Launcher.Verb);
        argv.Add(program);
        argv.AddRange(arguments);

        int* pair = stackalloc int[2];
        if (Libc.SocketPair(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0, pair) < 0)
        {
            throw new InvalidOperationException($"socketpair failed: errno {Libc.LastError}");
        }

        int ours = pair[0], theirs = pair[1];
        int pid;

        // A live run from the moment it exists: a run of this process that ends under the subreaper kills the descendants
        // outside its other live runs, and a launcher not yet handed over is one of them. Spawned and recorded under the
        // tree's lock, so that no such round sees it in between (it was killed there under load: the run then failed with
        // "receiving the listener failed, errno 104").
        lock (GuestTree.Spawning)
        {
            pid = SpawnLauncher(argv, theirs);
            if (pid > 0)
            {
                GuestTree.Started(pid, null);
            }
        }

        Libc.CloseOwned(theirs);
        if (pid < 0)
        {
            Libc.CloseOwned(ours);
            throw new InvalidOperationException($"posix_spawn of the launcher {command.Executable} failed: errno {-pid}");
        }

        return new LauncherProcess(pid, ours);
    }

    /// <summary>Sends the families the launcher's filter traps; false when the launcher is gone.</summary>
    internal bool SendFamilies(int families) => Libc.WriteRestarting(_control, &families, sizeof(int)) == sizeof(int);

    /// <summary>Reads the number the launcher's listener has in the launcher; false when it exited before handing it over.</summary>
    internal bool ReceiveListener(out int remote)
    {
        // A signal of this process (a child's end, the runtime's own) may cut the wait for the launcher short: wait on.
        int value;
        bool got = Libc.ReadRestarting(_control, &value, sizeof(int)) == sizeof(int);
        remote = value;
        return got;
    }

    /// <summary>What became of a launcher that did not hand over its listener, for the error that says so.</summary>
    internal string Describe(string step)
    {
        int error = Libc.LastError;
        SigInfo info = default;
        string state = Libc.WaitId(Libc.P_PID, _pid, &info, Libc.WEXITED | Libc.WNOHANG | Libc.WNOWAIT) < 0 || info.Pid == 0
            ? "still running"
            : info.Code == Libc.CLD_EXITED ? $"exited with {info.Status}" : $"killed by signal {info.Status}";
        return $"The launcher {_pid} did not hand over its seccomp listener ({step} failed, errno {error}; the launcher {state}; see its standard error).";
    }

    /// <summary>Lets the launcher execute the program.</summary>
    internal void Go()
    {
        byte go = (byte)'g';
        _ = Libc.WriteRestarting(_control, &go, 1);
    }

    /// <summary>
    /// Hands the launcher over to its run: its control socket is closed and <see cref="Dispose"/> no longer kills it
    /// (the <see cref="SupervisedGuest"/> owns the process from here).
    /// </summary>
    internal void Release()
    {
        CloseControl();
        _pid = 0;
    }

    /// <summary>Kills and reaps a launcher that was not handed over to a run.</summary>
    public void Dispose()
    {
        CloseControl();
        if (_pid > 0)
        {
            _ = Libc.Kill(_pid, Libc.SIGKILL);
            SigInfo info;
            while (Libc.WaitId(Libc.P_PID, _pid, &info, Libc.WEXITED) < 0 && Libc.LastError == Errno.EINTR)
            {
            }

            GuestTree.Ended(_pid);
            _pid = 0;
        }
    }

    private void CloseControl()
    {
        if (_control >= 0)
        {
            Libc.CloseOwned(_control);
            _control = -1;
        }
    }

    // A process group of its own: no group signal of the guests (kill(0), a SIGIO to their group) and no signal of the
    // terminal reaches the kernel (docs/security.md). The guest inherits the caller's standard descriptors.
    private static int SpawnLauncher(List<string> argv, int control) =>
        Interop.Spawn.SpawnHelper(argv, Interop.Spawn.Environ, control, Launcher.ControlFd, sealOff: false);
}
