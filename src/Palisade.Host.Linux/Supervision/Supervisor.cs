using System.Runtime.CompilerServices;
using Palisade.Interop;
using Palisade.Host.Linux.Authority;
using Palisade.Host.Linux.Mediation;
using Palisade.Host.Linux.Filtering;
using Palisade.Kernel.Hosting;
using FileIdentity = Palisade.Api.FileIdentity;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// The seccomp user-notification loop. One thread receives each notification, decodes its arguments
/// from guest memory once, asks the <see cref="ISyscallMediator"/>, performs the operation itself (or lets
/// a call whose arguments are all in registers continue) and answers. Every notification gets exactly
/// one answer: an errno, a result, an injected descriptor, or "continue"; when the guest died or was
/// interrupted meanwhile the answer fails with ENOENT, which is the kernel telling us nobody waits.
/// The family handlers live in Syscalls/*.cs.
/// </summary>
/// <remarks>
/// One thread receives at a time and serves each notification to its end. When one takes long (a driver holds its
/// decision, an open waits for a FIFO's partner, a connect for its peer: see <see cref="ReceiverWatch"/>), a new thread
/// takes over receiving and the old one ends after that notification. Several threads may thus serve notifications at
/// once, each for a different guest thread; the bookkeeping below (threads to processes, pending execs) is shared
/// between them and thread-safe.
/// </remarks>
internal sealed unsafe partial class Supervisor
{
    private readonly int _listener;
    private readonly ISyscallMediator _mediator;
    private readonly SyscallFamilies _families;
    private readonly Action<Exception>? _onFault;
    private readonly GuestThreads _threads = new();
    private readonly Dictionary<int, PendingExec> _pendingExecs = [];
    private readonly ManualResetEventSlim _ended = new();
    private readonly ReceiverWatch _watch;

    /// <summary>The kernel boundary, when the mediator subscribed it (the kernel mediator always does).</summary>
    private readonly Boundary.KernelBoundary? _boundary;
    private long _handled;
    private HostWatch? _guardWatch;

    /// <summary>The watch of last closes, when the mediator wants them (<see cref="ISyscallMediator.LastCloses"/>) and Linux allows it.</summary>
    private readonly LastCloseWatch? _lastCloses;

    // Threads that may still use the listener (the receiving one and those serving a slow notification); the last one
    // out closes it. The receiving thread leaves only when the listener hung up (no guest uses the filter any more).
    private int _serving;
    private volatile int _pendingExecCount;

    /// <summary>Creates a supervisor for <paramref name="listener"/> (owned: closed when the loop ends).</summary>
    public Supervisor(int listener, ISyscallMediator mediator, Action<Exception>? onFault)
    {
        ArgumentNullException.ThrowIfNull(mediator);
        _listener = listener;
        _mediator = mediator;
        _families = mediator.Subscriptions;
        _onFault = onFault;
        _watch = new ReceiverWatch(ReserveReceiver, TakeOver, StillWaiting, GuestGone, AtThreadLimit);
        _boundary = (_families & SyscallFamilies.KernelBoundary) != 0 ? new Boundary.KernelBoundary(mediator) : null;
        if (mediator.LastCloses is { } sink)
        {
            _lastCloses = LastCloseWatch.TryStart(sink, onFault, out int error);
            if (_lastCloses is null)
            {
                onFault?.Invoke(new InvalidOperationException($"the watch of last closes could not start (errno {error}): no cleanup is reported for this guest tree"));
            }
        }

        if (mediator is KernelMediator kernel)
        {
            // The guard watches the listener this supervisor serves and the mediator it asks, until the listener closes.
            _ = kernel.Host.WatchWiring(new HostProtection.SupervisorWiring(this), out _guardWatch);
        }
    }

    /// <summary>
    /// Bytes the loop thread allocated after its first <see cref="WarmUpNotifications"/> notifications, up to
    /// the end of the loop (valid once <see cref="Run"/> returned): the steady-state allocation of the hot path.
    /// </summary>
    public long SteadyStateAllocatedBytes { get; private set; }

    /// <summary>The most threads whose process the supervisor remembers at once (see <see cref="Identify"/>).</summary>
    public const int MaxCachedThreads = GuestThreads.MaxThreads;

    /// <summary>Notifications after which the loop counts as warm (caches filled, code jitted).</summary>
    public const int WarmUpNotifications = 64;

    /// <summary>Notifications a receiving thread serves past the run's warm-up before its own allocations are counted.</summary>
    public const int ThreadWarmUpNotifications = 8;

    /// <summary>The seccomp listener this supervisor serves (the guard watches it).</summary>
    internal int Listener => _listener;

    /// <summary>The mediator this supervisor asks (the guard watches it).</summary>
    internal ISyscallMediator Mediator => _mediator;

    /// <summary>The system call families it mediates (the guard watches them).</summary>
    internal SyscallFamilies Families => _families;

    /// <summary>Notifications answered so far.</summary>
    public long Handled => Interlocked.Read(ref _handled);

    /// <summary>Starts the loop on a dedicated background thread; it ends when no guest uses the filter any more.</summary>
    public void Start()
    {
        _watch.Start();
        StartReceiver(first: true);
    }

    /// <summary>Tells the kernel boundary the run's cgroup, which no guest may leave.</summary>
    internal void ConfineTo(Launch.RunCgroup cgroup) => _boundary?.ConfineTo(cgroup);

    /// <summary>
    /// Waits until the loop has ended (every guest of the filter is gone, and every thread that served one of them has
    /// answered); false if <paramref name="timeout"/> passed first.
    /// </summary>
    public bool WaitForEnd(TimeSpan timeout) => _ended.Wait(timeout);

    /// <summary>Notifications that took long and were handed over to a thread of their own (see <see cref="ReceiverWatch"/>).</summary>
    public long TakeOvers => _watch.TakeOvers;

    /// <summary>Threads serving a slow notification now (see <see cref="ReceiverWatch.MaxWaitingThreads"/>).</summary>
    public int WaitingThreads => _watch.Waiting;

    /// <summary>Waits cut short because their guest was gone.</summary>
    public long AbandonedWaits => _watch.Abandoned;

    private void StartReceiver(bool first)
    {
        Interlocked.Increment(ref _serving);
        StartCounted(first);
    }

    private void StartCounted(bool first)
    {
        var thread = new Thread(() => Serve(first)) { IsBackground = true, Name = "palisade-supervisor" };
        thread.Start();
    }

    /// <summary>Called by the watch before it hands the listener over: the thread about to be started is counted first.</summary>
    private void ReserveReceiver() => Interlocked.Increment(ref _serving);

    /// <summary>
    /// Called by the watch after <see cref="ReserveReceiver"/>: <paramref name="claimed"/>, the receiving thread serves a
    /// slow notification and the reserved thread receives from now on; otherwise the notification ended first and the
    /// reservation is returned.
    /// </summary>
    private void TakeOver(bool claimed)
    {
        if (claimed)
        {
            StartCounted(first: false);
        }
        else
        {
            ThreadDone();
        }
    }

    /// <summary>The guest of a thread serving a slow notification no longer waits: a decision held for it is cancelled.</summary>
    private void GuestGone(int process, int thread, ulong notification) =>
        _mediator.WaiterGone(new Requester(process != 0 ? process : _threads.ProcessOf(thread), thread) { CallId = notification });

    private void AtThreadLimit() => _onFault?.Invoke(new InvalidOperationException(
        $"{ReceiverWatch.MaxWaitingThreads} supervisor threads serve slow operations; a further one that waits is cut short (EAGAIN) until one ends"));

    /// <summary>
    /// The errno of a blocking call made for a guest: EAGAIN instead of EINTR when the watch cut it short at the bound of
    /// waiting threads (see <see cref="ReceiverWatch.TakeRefusal"/>).
    /// </summary>
    private int AfterWait(int errno) => errno == Errno.EINTR && _watch.TakeRefusal() ? Errno.EAGAIN : errno;

    /// <summary>A thread that served the listener ends; the last one closes it, and the loop has ended once guests are gone too.</summary>
    private void ThreadDone()
    {
        if (Interlocked.Decrement(ref _serving) != 0)
        {
            return;
        }

        _watch.Dispose();
        _guardWatch?.Dispose();
        _threads.Dispose();
        Libc.CloseOwned(_listener);

        // No guest is left: every last close of theirs is queued already (Linux raises it before a process is gone).
        _lastCloses?.Stop();
        _ended.Set();
    }

    /// <summary>
    /// True when Linux says no task uses the filter any more (POLLHUP on the listener). A poll a signal interrupts (the
    /// receiver watch's, a tracer's) is asked again: taking it for a hang-up would end the supervisor under every guest.
    /// </summary>
    private bool ListenerHungUp()
    {
        var pfd = new PollFd { Fd = _listener, Events = 0 };
        int polled;
        do
        {
            polled = Libc.Poll(&pfd, 1, 0);
        }
        while (polled < 0 && Libc.LastError == Errno.EINTR);

        return polled < 0 || (pfd.Revents & Libc.POLLHUP) != 0;
    }

    /// <summary>
    /// Serves notifications until the last guest of the filter is gone, or until a notification this thread served took
    /// long and a new thread took over receiving: it then ends after answering that notification.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Serve(bool first)
    {
        PrepareWorkerThread();
        if (first)
        {
            _ = Seccomp.SetSyncWakeUp(_listener);
        }

        var scratch = new Scratch();
        SeccompNotif notification;
        // Measured from this thread's own first notifications on (a thread that takes over receiving makes its per-thread
        // records at its first open), and only once the run as a whole is past its warm-up.
        long warm = -1;
        int served = 0;
        try
        {
            while (true)
            {
                int received = Seccomp.Receive(_listener, &notification);
                if (received == -Errno.EINTR)
                {
                    continue;
                }

                // ENOENT means one notification was withdrawn (its thread was killed or its call interrupted while
                // it was being handed over), not that the guests are gone: serve on unless the listener has hung
                // up, which is how Linux says no task uses the filter any more.
                if (received == -Errno.ENOENT && !ListenerHungUp())
                {
                    continue;
                }

                if (received < 0)
                {
                    break;
                }

                long ticket = _watch.Begin(notification.Id, 0, (int)notification.Pid);
                Dispatch(in notification, scratch);
                if (Interlocked.Increment(ref _handled) >= WarmUpNotifications && ++served == ThreadWarmUpNotifications)
                {
                    warm = GC.GetAllocatedBytesForCurrentThread();
                }

                if (!_watch.End(ticket))
                {
                    return;
                }
            }

            SteadyStateAllocatedBytes = warm < 0 ? 0 : GC.GetAllocatedBytesForCurrentThread() - warm;
        }
        finally
        {
            ThreadDone();
        }
    }

    /// <summary>
    /// Gives the calling thread its own cwd, root and umask (see <see cref="ActingThread.Prepare"/>), so that it can act
    /// for guests: take a guest's root and umask, and resolve relative AF_UNIX paths with fchdir, without touching the
    /// rest of the process.
    /// </summary>
    internal static void PrepareWorkerThread() => ActingThread.Prepare();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Dispatch(in SeccompNotif n, Scratch s)
    {
        // Processes that ended without a call the supervisor saw (a signal killed them): forget their threads
        // before anything else, so a reused pid is a new process and not the dead one's thread.
        while (_mediator.TryTakeEndedProcess(out int ended))
        {
            ForgetProcess(ended);
        }

        try
        {
            if (n.Data.Arch != Seccomp.AUDIT_ARCH_X86_64)
            {
                // The filter refuses other ABIs before notifying; this is a second line.
                Reply(n.Id, Errno.ENOSYS);
                return;
            }

            SupervisedThread? thread = Identify((int)n.Pid, n.Id, s);
            if (thread is null)
            {
                // The thread is gone (killed while its call waited): nobody receives an answer.
                Reply(n.Id, Errno.ESRCH);
                return;
            }

            Requester requester = thread.Requester with { CallId = n.Id };
            if (_pendingExecCount > 0 && !VerifyPendingExec(in n, requester, s))
            {
                return;
            }

            if (IsContextChange(n.Data.Nr) && HandleContextChange(in n, thread, s))
            {
                return;
            }

            switch (n.Data.Nr)
            {
                case Sys.Open:
                case Sys.Openat:
                case Sys.Openat2:
                case Sys.Creat:
                    HandleOpen(in n, thread, s);
                    break;
                case Sys.Rename:
                case Sys.Renameat:
                case Sys.Renameat2:
                case Sys.Unlink:
                case Sys.Unlinkat:
                case Sys.Rmdir:
                case Sys.Truncate:
                case Sys.Chmod:
                case Sys.Fchmodat:
                case Sys.Fchmodat2:
                case Sys.Chown:
                case Sys.Lchown:
                case Sys.Fchownat:
                case Sys.Fchmod:
                case Sys.Fchown:
                case Sys.Ftruncate:
                case Sys.Fallocate:
                case Sys.Utime:
                case Sys.Utimes:
                case Sys.Futimesat:
                case Sys.Utimensat:
                case Sys.Setxattr:
                case Sys.Lsetxattr:
                case Sys.Fsetxattr:
                case Sys.Setxattrat:
                case Sys.Removexattr:
                case Sys.Lremovexattr:
                case Sys.Fremovexattr:
                case Sys.Removexattrat:
                case Sys.Link:
                case Sys.Linkat:
                case Sys.Mkdir:
                case Sys.Mkdirat:
                case Sys.Mknod:
                case Sys.Mknodat:
                case Sys.Symlink:
                case Sys.Symlinkat:
                    HandlePathOperation(in n, thread, s);
                    break;
                case Sys.Close:
                    _mediator.Close(requester, (int)n.Data.Args[0]);
                    Continue(n.Id);
                    break;
                case Sys.Execve:
                case Sys.Execveat:
                    HandleExec(in n, thread, s);
                    break;
                case Sys.Mmap:
                case Sys.Mprotect:
                case Sys.PkeyMprotect:
                    HandleImageMapping(in n, thread, s);
                    break;
                case Sys.Connect:
                case Sys.Bind:
                case Sys.Listen:
                case Sys.Accept:
                case Sys.Accept4:
                case Sys.Sendto:
                case Sys.Sendmsg:
                case Sys.Sendmmsg:
                    HandleNetwork(in n, thread, s);
                    break;
                case Sys.Fork:
                case Sys.Vfork:
                case Sys.Clone:
                case Sys.Exit:
                case Sys.ExitGroup:
                    HandleLifetime(in n, requester);
                    break;
                case Sys.Fcntl:
                case Sys.Ioctl:
                    HandleSignalOwner(in n, thread, s);
                    break;
                default:
                    HandleProcessAccess(in n, requester, s);
                    break;
            }
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            // A mediator that throws is contained: the guest's call fails, the supervisor goes on.
            Reply(n.Id, Errno.EPERM);
            _onFault?.Invoke(exception);
        }
    }

    /// <summary>
    /// The notifying thread with its process and authority. Read from /proc/{tid}/status the first time the thread is
    /// seen (or after something it could have changed), then confirmed with ID_VALID: a thread id is reused only after
    /// its thread ended, and this one is still waiting, so what was read is its. The first sight of a process is
    /// reported as <see cref="ISyscallMediator.ProcessStarted"/>. Null when the thread is gone.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private SupervisedThread? Identify(int tid, ulong id, Scratch s)
    {
        if (_threads.TryGet(tid, out SupervisedThread? known))
        {
            return known;
        }

        SupervisedThread? thread = _threads.Read(tid, s, out bool newProcess, out bool newThread, out int parent);
        if (thread is null || !StillWaiting(id))
        {
            _threads.ForgetThread(tid);
            return null;
        }

        Requester requester = thread.Requester;
        if (newProcess && (_families & (SyscallFamilies.ProcessLifetime | SyscallFamilies.ProcessExits)) != 0)
        {
            _mediator.ProcessStarted(requester, parent);
        }
        else if (!newProcess && newThread && tid != requester.ProcessId && (_families & SyscallFamilies.ProcessExits) != 0
            && (_families & SyscallFamilies.ProcessLifetime) == 0)
        {
            // clone runs natively under ProcessExits: a new thread is reported at its first mediated call.
            _mediator.ThreadStarted(requester);
        }

        return thread;
    }

    /// <summary>
    /// Reads guest memory for a notification's thread. When what was read of the thread is stale (its process's address
    /// space is gone: the thread id now belongs to another process), the process is forgotten, the thread read again,
    /// and the read retried once; <paramref name="thread"/> is then the fresh entry.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal int ReadGuest(ref SupervisedThread thread, ulong id, ulong address, Span<byte> destination, int length, Scratch s)
    {
        int got = GuestMemory.Read(thread.Process, address, destination, length);
        return got != -Errno.ESRCH || !Refresh(ref thread, id, s) ? got : GuestMemory.Read(thread.Process, address, destination, length);
    }

    /// <summary>Reads a path for a notification's thread, as <see cref="ReadGuest"/> does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal int ReadGuestPath(ref SupervisedThread thread, ulong id, ulong address, Span<byte> destination, Scratch s)
    {
        int got = GuestMemory.ReadPath(thread.Process, address, destination);
        return got != -Errno.ESRCH || !Refresh(ref thread, id, s) ? got : GuestMemory.ReadPath(thread.Process, address, destination);
    }

    /// <summary>Replaces a stale entry (see <see cref="ReadGuest"/>); false when the thread is gone.</summary>
    private bool Refresh(ref SupervisedThread thread, ulong id, Scratch s)
    {
        ForgetProcess(thread.Process.ProcessId);
        SupervisedThread? fresh = Identify(thread.Requester.ThreadId, id, s);
        if (fresh is null)
        {
            return false;
        }

        thread = fresh;
        return true;
    }

    /// <summary>
    /// Rewrites a path in <paramref name="buffer"/> that names the calling process (/proc/self, /proc/thread-self,
    /// /dev/fd, /dev/std*) to the guest's own /proc entry, numbered as the guest's /proc numbers it (the supervisor would
    /// otherwise resolve "self" to itself); returns the new length.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int RewriteSelf(SupervisedThread thread, byte[] buffer, int length, Scratch s, out bool rewritten)
    {
        rewritten = false;
        if (!Syscalls.PathResolution.NamesCallingProcess(buffer.AsSpan(0, length)))
        {
            return length;
        }

        int process = thread.Requester.ProcessId, tid = thread.Requester.ThreadId;
        if (!thread.Authority.KernelRoot && !GuestProcView.TryNumbers(thread, s, ref process, ref tid))
        {
            return length;
        }

        return Syscalls.PathResolution.RewriteSelfReferences(buffer, length, process, tid, out rewritten);
    }

    /// <summary>Forgets a process that ended (its threads, its handles, a pending exec check).</summary>
    private void ForgetProcess(int processId)
    {
        _threads.ForgetProcess(processId);
        ForgetPendingExec(processId);
    }

    /// <summary>Answers with an errno (0 = success with value <paramref name="value"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void Reply(ulong id, int error, long value = 0)
    {
        var response = new SeccompNotifResp { Id = id, Error = -error, Val = error == 0 ? value : 0 };
        _ = Seccomp.Send(_listener, &response);
    }

    /// <summary>Lets Linux run the call as the guest made it; only for calls whose arguments are all in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void Continue(ulong id)
    {
        var response = new SeccompNotifResp { Id = id, Flags = Seccomp.SECCOMP_USER_NOTIF_FLAG_CONTINUE };
        _ = Seccomp.Send(_listener, &response);
    }

    /// <summary>True while the guest still waits for <paramref name="id"/>: memory read before this check belonged to it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal bool StillWaiting(ulong id) => Seccomp.IsValid(_listener, id);

    /// <summary>An exec that was let run: the file named, the image before, the calling thread, the program that finally runs
    /// when it is not the file named (a script's last interpreter), the ELF interpreter Linux must map (none when none), and
    /// the canonical path of the file named (for the exec's result).</summary>
    private readonly record struct PendingExec(FileIdentity Approved, FileIdentity Previous, int Thread, FileIdentity Interpreter, FileIdentity ElfInterpreter, string ImagePath);
}
