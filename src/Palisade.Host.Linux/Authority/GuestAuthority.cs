using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Authority;

/// <summary>
/// Everything the supervisor must act with when it performs an operation for one guest thread, as that thread had it
/// when the supervisor last looked: its credentials (<see cref="ActingCredentials"/>), its root directory and mount
/// namespace, its umask and its Landlock domain. Read from /proc once and kept until something that changes it is
/// seen (<see cref="GuestThreads"/>); immutable, so a worker thread that holds one never sees it change.
/// </summary>
internal sealed class GuestAuthority
{
    /// <summary>Creates the authority of one guest thread.</summary>
    public GuestAuthority(Requester requester, ActingCredentials acting, bool kernelRoot, uint umask, bool initialUserNamespace = true,
        LandlockDomain? domain = null, bool domainUnknown = false)
    {
        Requester = requester;
        Acting = acting;
        KernelRoot = kernelRoot;
        Umask = umask;
        InitialUserNamespace = initialUserNamespace;
        Domain = domain;
        DomainUnknown = domainUnknown;
    }

    /// <summary>The guest thread (its process, its id, its real uid).</summary>
    public Requester Requester { get; }

    /// <summary>The credentials Linux would check for this thread's own operations.</summary>
    public ActingCredentials Acting { get; }

    /// <summary>
    /// True when the thread's root directory is the supervisor's (same mount, same directory, hence the same mount
    /// namespace): paths resolve as they do for the supervisor's threads and nothing needs to change. False for a
    /// chrooted guest or one in another mount namespace: the acting thread takes the guest's root first.
    /// </summary>
    public bool KernelRoot { get; }

    /// <summary>The thread's umask (its fs context's).</summary>
    public uint Umask { get; }

    /// <summary>
    /// True when the thread is in the supervisor's user namespace. Otherwise its capabilities count only in its own
    /// namespace, and the supervisor acts with its kernel uid and gid and no capability (<see cref="ActingCredentials"/>).
    /// </summary>
    public bool InitialUserNamespace { get; }

    /// <summary>The Landlock domain the thread is in, mirrored by supervisor threads; null when it is in none.</summary>
    public LandlockDomain? Domain { get; }

    /// <summary>
    /// True when the supervisor cannot tell which Landlock domain the thread is in (<see cref="LandlockLineage"/>): it
    /// then performs nothing for it (EACCES) rather than risk performing it outside the guest's sandbox.
    /// </summary>
    public bool DomainUnknown { get; }
}
