using Palisade.Interop;

namespace Palisade.Host.Linux.Launch;

/// <summary>
/// palisade's controlling terminal. Guests run in a process group of their own, so that no group signal of theirs
/// (kill(0), kill(-pgrp), a descriptor's SIGIO to their group) and no signal the terminal sends (^C, ^Z) reaches the
/// kernel. palisade then does what a job-control shell does: it gives the terminal's foreground to the guests' group
/// whenever palisade holds it, takes it back when they stop (and stops itself, so that its own shell sees the job
/// stopped, whether it ran in the foreground or in the background), gives it again when it is continued in the
/// foreground (fg), continues the guests either way (fg or bg), and takes it back at the end.
/// </summary>
internal sealed unsafe class ForegroundTerminal : IDisposable
{
    private readonly int _tty;
    private readonly int _guests;
    private readonly int _own = Spawn.GetProcessGroup();

    private ForegroundTerminal(int tty, int guests)
    {
        _tty = tty;
        _guests = guests;
    }

    /// <summary>
    /// Gives the foreground of palisade's controlling terminal to <paramref name="guestGroup"/> if palisade holds it;
    /// null when palisade has no controlling terminal (then there is no job control to follow).
    /// </summary>
    public static ForegroundTerminal? HandTo(int guestGroup)
    {
        byte* path = stackalloc byte[] { (byte)'/', (byte)'d', (byte)'e', (byte)'v', (byte)'/', (byte)'t', (byte)'t', (byte)'y', 0 };
        int tty = Libc.OpenAt(Libc.AT_FDCWD, path, Libc.O_RDWR | Libc.O_NOCTTY | Libc.O_CLOEXEC, 0);
        if (tty < 0)
        {
            return null;
        }

        var terminal = new ForegroundTerminal(tty, guestGroup);
        terminal.GiveIfForeground();
        return terminal;
    }

    /// <summary>
    /// The guests' group stopped (^Z): palisade takes the terminal back and stops itself like the rest of its job; once
    /// continued, it gives the terminal again if it is in the foreground (fg) and continues the guests.
    /// </summary>
    public void StopWithGuests()
    {
        if (Spawn.TcGetProcessGroup(_tty) == _guests)
        {
            SetForeground(_own);
        }

        _ = Libc.Kill(Environment.ProcessId, Spawn.SIGSTOP);

        // Continued: by fg (palisade is the foreground again) or by bg.
        GiveIfForeground();
        _ = Spawn.KillProcessGroup(_guests, Spawn.SIGCONT);
    }

    /// <summary>Takes the foreground back for palisade's group, if the guests hold it.</summary>
    public void Dispose()
    {
        if (Spawn.TcGetProcessGroup(_tty) == _guests)
        {
            SetForeground(_own);
        }

        Libc.CloseOwned(_tty);
    }

    private void GiveIfForeground()
    {
        if (Spawn.TcGetProcessGroup(_tty) == _own)
        {
            SetForeground(_guests);
        }
    }

    /// <summary>tcsetpgrp with SIGTTOU blocked on this thread: a background process may then take the foreground back.</summary>
    private void SetForeground(int group)
    {
        byte* block = stackalloc byte[Spawn.SigSetSize];
        byte* old = stackalloc byte[Spawn.SigSetSize];
        _ = Spawn.SigEmptySet(block);
        _ = Spawn.SigAddSet(block, Spawn.SIGTTOU);
        _ = Spawn.PthreadSigMask(Spawn.SIG_BLOCK, block, old);
        _ = Spawn.TcSetProcessGroup(_tty, group);
        _ = Spawn.PthreadSigMask(Spawn.SIG_SETMASK, old, null);
    }
}
