using System.Runtime.CompilerServices;

namespace Palisade.Host.Linux.Authority;

/// <summary>
/// One operation the supervisor performs for a guest: a system call (or a short sequence of them) on values the
/// supervisor already decoded. An action holds no managed references and no spans, only numbers and pointers into
/// buffers its caller keeps pinned, so it can run on whichever thread may act for the guest.
/// </summary>
internal interface IGuestAction
{
    /// <summary>Performs the operation on the calling thread, which already acts as the guest; its result or -errno.</summary>
    long Run();
}

/// <summary>
/// The one way the supervisor performs an operation for a guest: with the guest's root and credentials
/// (<see cref="ActingThread"/>), and always back to the kernel's afterwards, whatever the action did.
/// </summary>
internal static class GuestAction
{
    /// <summary>
    /// Runs <paramref name="action"/> as <paramref name="guest"/>; its result, or -errno (EPERM when the supervisor
    /// cannot act for it). With <paramref name="inGuestRoot"/> false the action keeps the supervisor's root (and only
    /// takes the guest's credentials): for a path through the supervisor's own /proc/self/fd to an object that was
    /// already resolved in the guest's root.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static long Run<TAction>(GuestAuthority guest, ref TAction action, bool inGuestRoot = true)
        where TAction : struct, IGuestAction
    {
        if (guest.Domain is not null || guest.DomainUnknown)
        {
            // A sandboxed guest: on a thread of its Landlock domain (the action is boxed; sandboxed guests are rare).
            return guest.DomainUnknown ? -Palisade.Interop.Errno.EACCES : guest.Domain!.Run(guest, action, inGuestRoot);
        }

        int error = ActingThread.Enter(guest, inGuestRoot);
        try
        {
            return error != 0 ? -error : action.Run();
        }
        finally
        {
            ActingThread.Leave();
        }
    }

    /// <summary>Runs a boxed action as <paramref name="guest"/> on the calling thread (a worker of the guest's Landlock domain).</summary>
    public static long RunHere(GuestAuthority guest, IGuestAction action, bool inGuestRoot)
    {
        int error = ActingThread.Enter(guest, inGuestRoot);
        try
        {
            return error != 0 ? -error : action.Run();
        }
        finally
        {
            ActingThread.Leave();
        }
    }
}

/// <summary>One raw system call as the guest, with its umask when it creates a file system object.</summary>
internal struct SyscallAction : IGuestAction
{
    public long Number;
    public long A1;
    public long A2;
    public long A3;
    public long A4;
    public long A5;

    /// <summary>The guest's umask, applied when <see cref="Creates"/> (for mkdir, mknod, bind of a socket file).</summary>
    public uint Umask;

    /// <summary>True when the call creates an object whose mode the umask narrows.</summary>
    public bool Creates;

    /// <summary>Which argument (1 to 5) holds the mode, for applying the umask by hand on a thread without a private fs context; 0 for none.</summary>
    public int ModeArgument;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public long Run()
    {
        if (Creates && !ActingThread.UseUmask(Umask))
        {
            MaskMode();
        }

        long r = Palisade.Interop.Libc.Syscall(Number, A1, A2, A3, A4, A5, 0);
        return r < 0 ? -Palisade.Interop.Libc.LastError : r;
    }

    private void MaskMode()
    {
        switch (ModeArgument)
        {
            case 2:
                A2 &= ~(long)Umask;
                break;
            case 3:
                A3 &= ~(long)Umask;
                break;
            case 4:
                A4 &= ~(long)Umask;
                break;
            default:
                break;
        }
    }
}
