using Palisade.Host.Linux.Filtering;
using Palisade.Kernel.Hosting;
using FileIdentity = Palisade.Api.FileIdentity;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// The boundary between the supervisor and a policy: the supervisor calls one method per decision point, with
/// every argument that lives in the guest's memory already read (once) and validated, and every path made
/// absolute against the guest's dirfd or cwd. The supervisor then performs the operation itself (or lets Linux
/// continue a call whose arguments are all in registers), so what a decision saw is what happens.
/// <see cref="KernelMediator"/> is the policy of <c>palisade run</c>: it turns each call into a request to the kernel
/// through <see cref="KernelHost"/>.
/// <para>
/// What is not an argument of the call is not resolved in advance: facts about processes (a parent, the image a
/// process runs, which thread group a thread belongs to) and what a closed descriptor named are read from /proc
/// through <see cref="Supervision.ProcFs"/> by the mediator that needs them, and only when a decision needs them, so
/// that a call no registration cares about costs nothing more.
/// </para>
/// <para>
/// Threading: calls come from the supervisor's threads, several at once: each notification is served to its end on
/// the thread that received it, and one that takes long (a decision a driver holds, a FIFO open, a blocking connect)
/// hands receiving to a new thread (see <see cref="Supervision.ReceiverWatch"/>). Implementations must be thread-safe;
/// a decision that blocks delays only the guest thread it decides, and the others after a hand-over of a few
/// milliseconds.
/// </para>
/// <para>
/// Decisions return an errno: 0 allows, any positive value (EACCES, EPERM, ...) fails the guest's call
/// with that value. Paths are UTF-8 bytes without the terminating NUL and are only valid during the call
/// (they live in the supervisor's reusable buffers). A method that throws is answered EPERM and reported
/// through <see cref="Supervisor"/>'s fault handler.
/// </para>
/// </summary>
internal interface ISyscallMediator
{
    /// <summary>Which system call families this mediator wants to see; fixed for the life of a guest tree.</summary>
    SyscallFamilies Subscriptions { get; }

    /// <summary>
    /// A <see cref="PreOpen"/> result: allow, and no <see cref="PostOpen"/> is needed for this open (no one would look
    /// at what was opened). The supervisor then skips what only the post decision needs, such as the file's identity.
    /// </summary>
    const int AllowWithoutPost = -1;

    /// <summary>
    /// Before an open: the path (absolute, not canonical), flags and mode the guest asked for. Returns 0 to allow
    /// (with a <see cref="PostOpen"/> to follow once the file is open), <see cref="AllowWithoutPost"/> to allow without
    /// one, or an errno to deny.
    /// </summary>
    int PreOpen(in Requester requester, in OpenCall request);

    /// <summary>
    /// After a <see cref="PreOpen"/> that allowed, on the same thread: a descriptor that names the file a driver held the
    /// decision on, through which the supervisor must open the guest's file (so that the guest gets the file decided on),
    /// or -1 when the decision was not held on a file. The caller owns the descriptor.
    /// </summary>
    int TakeHeldFile();

    /// <summary>
    /// The guest thread whose call <see cref="Requester.CallId"/> (the notification id) a supervisor thread serves no longer
    /// waits for it (it was killed, or its process ended): a decision held for that call can be given up. Called from the
    /// supervisor's watch, at most once per call. The call may also have been answered just now, and the thread may already
    /// wait for its next call: act only on the call named.
    /// </summary>
    void WaiterGone(in Requester requester);

    /// <summary>
    /// After the supervisor opened the file and before the guest gets it: the identity and the canonical
    /// path of what was really opened (symlinks resolved). Denying here closes the file; a file created or
    /// truncated by the open stays so.
    /// </summary>
    int PostOpen(in Requester requester, in OpenCall request, in OpenedFile file);

    /// <summary>rename*, unlink*, rmdir, truncate, chmod*, chown*: decided before the supervisor performs it.</summary>
    int PathOperation(in Requester requester, in PathOperationCall request);

    /// <summary>
    /// A path operation that <see cref="PathOperation"/> allowed has been performed: <paramref name="error"/> is its
    /// result, 0 or the errno Linux gave. Called on the thread that decided it, right after the operation and before
    /// the guest gets the result, with the same request.
    /// </summary>
    void PathOperationCompleted(in Requester requester, in PathOperationCall request, int error);

    /// <summary>A descriptor is being closed (only when <see cref="SyscallFamilies.FileClose"/> is subscribed).</summary>
    void Close(in Requester requester, int fd);

    /// <summary>
    /// Where the last closes of the files guests open for writing go, when the mediator wants them reported at the release
    /// of the open file description (see <see cref="Supervision.LastCloseWatch"/>); null (the default) when it does not.
    /// A mediator that returns one subscribes <see cref="SyscallFamilies.FileOpen"/>, so that the supervisor opens those
    /// files and can watch them.
    /// </summary>
    Supervision.ILastCloseSink? LastCloses => null;

    /// <summary>An execve/execveat of the image whose identity is given (see docs/security.md for the guarantee).</summary>
    int Exec(in Requester requester, in ExecCall request);

    /// <summary>
    /// How an exec ended: failed by the supervisor or the mediator (with the errno the guest got), or performed or failed
    /// by Linux after it was allowed (seen at the process's next mediated call). Once per exec.
    /// </summary>
    void ExecCompleted(in Requester requester, in ExecOutcome outcome)
    {
    }

    /// <summary>
    /// A file about to be mapped executable (mmap with PROT_EXEC of a descriptor, mprotect adding PROT_EXEC to a file
    /// mapping): only when <see cref="SyscallFamilies.ImageMappings"/> is subscribed. 0 lets it be mapped; an errno fails
    /// the call before anything is mapped.
    /// </summary>
    int ImageMapping(in Requester requester, in ImageMappingCall request) => 0;

    /// <summary>connect, bind, listen, accept and sends with an explicit destination. For an accept the supervisor
    /// performs (<see cref="MediatesAccept"/>), the call is the connection accepted, with its peer; an errno drops it.</summary>
    int Network(in Requester requester, in NetworkCall request);

    /// <summary>True when the supervisor must perform the guest's accepts on sockets of <paramref name="family"/> itself
    /// (so that each connection is decided, with its peer, before the guest has it); false lets the guest's accept run.</summary>
    bool MediatesAccept(int family) => false;

    /// <summary>A connect that succeeded, or an accept that was permitted and given to the guest: the flow of socket
    /// <paramref name="socket"/> (the supervisor's copy, open for the duration of the call) is established.
    /// <paramref name="request"/> holds the connected socket's addresses.</summary>
    void FlowEstablished(in Requester requester, in NetworkCall request, int socket)
    {
    }

    /// <summary>A signal, pidfd, ptrace or cross-process memory access aimed at another process or thread.</summary>
    int ProcessAccess(in Requester requester, in ProcessAccessCall request);

    /// <summary>fork, vfork or clone (process or thread); denying fails the call with the errno.</summary>
    int ProcessCreate(in Requester requester, in ProcessCreateCall request);

    /// <summary>
    /// The first mediated system call of a process the supervisor has not seen before (a child of a
    /// fork, or the launched program itself); <paramref name="parentProcessId"/> is its parent.
    /// </summary>
    void ProcessStarted(in Requester requester, int parentProcessId);

    /// <summary>
    /// The first mediated system call of a new thread of a process the supervisor already knows, when clone is not
    /// notified (the thread is reported lazily, before anything it asks for is decided).
    /// </summary>
    void ThreadStarted(in Requester requester);

    /// <summary>
    /// Takes one process that ended without an exit call the supervisor saw (killed by a signal), so the supervisor
    /// forgets its threads before its pid can be reused. Called from the supervisor's thread; false when none.
    /// </summary>
    bool TryTakeEndedProcess(out int processId);

    /// <summary>A thread calls exit, or a process calls exit_group (<paramref name="wholeProcess"/>).</summary>
    void ProcessExit(in Requester requester, bool wholeProcess, int status);

    /// <summary>
    /// The launched program has been waited for and the caller is about to move on: report anything still pending
    /// about processes that have ended (a mediator that learns of ends on its own, such as the end of a process a
    /// signal killed, which no system call announces).
    /// </summary>
    void Drain();

    /// <summary>
    /// What a file-system object is to the kernel, for the kernel boundary (which refuses any guest's change to the
    /// kernel's own files). A mediator that runs no kernel owns no files: <see cref="KernelFileKind.None"/>.
    /// </summary>
    KernelFileKind KernelFileKindOf(FileIdentity identity) => KernelFileKind.None;
}

/// <summary>Which open-family system call carried an <see cref="OpenCall"/>.</summary>
internal enum OpenVariant
{
    /// <summary>open(2).</summary>
    Open,

    /// <summary>openat(2).</summary>
    OpenAt,

    /// <summary>openat2(2), with <see cref="OpenCall.Resolve"/> flags.</summary>
    OpenAt2,

    /// <summary>creat(2): flags are O_CREAT|O_WRONLY|O_TRUNC.</summary>
    Creat,
}

/// <summary>An open, decoded.</summary>
internal readonly ref struct OpenCall
{
    /// <summary>The call that carried it.</summary>
    public OpenVariant Call { get; init; }

    /// <summary>The path, made absolute against the guest's dirfd or cwd, not canonicalized.</summary>
    public ReadOnlySpan<byte> Path { get; init; }

    /// <summary>The open flags as the guest gave them (O_* values of x86-64).</summary>
    public int Flags { get; init; }

    /// <summary>The creation mode as the guest gave it (before its umask).</summary>
    public uint Mode { get; init; }

    /// <summary>openat2 RESOLVE_* flags; 0 for the other calls.</summary>
    public ulong Resolve { get; init; }

    /// <summary>The object the path names, resolved as the guest when asked (see <see cref="Authority.GuestFileFacts"/>).</summary>
    public FileObjectFacts? Facts { get; init; }
}

/// <summary>What an open really opened.</summary>
internal readonly ref struct OpenedFile
{
    private readonly int _fd;
    private readonly uint _mode;
    private readonly Span<byte> _proc;
    private readonly Span<byte> _buffer;

    /// <summary>Describes the supervisor's descriptor <paramref name="fd"/> (its identity and st_mode), using the two buffers to read its path on demand.</summary>
    internal OpenedFile(FileIdentity identity, uint mode, int fd, Span<byte> proc, Span<byte> buffer, FileObjectFacts? facts = null, Palisade.Api.FileChangeStamp changeStamp = default)
    {
        Identity = identity;
        ChangeStamp = changeStamp;
        _mode = mode;
        _fd = fd;
        _proc = proc;
        _buffer = buffer;
        Facts = facts;
    }

    /// <summary>The opened file's facts (path, file system) read from the descriptor on demand.</summary>
    public FileObjectFacts? Facts { get; }

    /// <summary>The type of the opened object.</summary>
    public Palisade.Api.FileObjectType Type => Interop.Libc.TypeOf(_mode);

    /// <summary>What the open did (see <see cref="Palisade.Api.FileOperation.CreateResult"/>).</summary>
    public Palisade.Api.CreateResult Result { get; init; }

    /// <summary>The opened file's change stamp, taken with its identity; none when it was not (the kernel then takes it when asked).</summary>
    public Palisade.Api.FileChangeStamp ChangeStamp { get; }

    /// <summary>Device and inode of the opened file.</summary>
    public FileIdentity Identity { get; }

    /// <summary>True when the opened object is a directory.</summary>
    public bool IsDirectory => (_mode & Interop.Libc.S_IFMT) == Interop.Libc.S_IFDIR;

    /// <summary>
    /// Its canonical path as the kernel reports it (readlink of /proc/self/fd/N: symlinks resolved; may end
    /// in " (deleted)"). Read on each call (one readlink), so a mediator that decides on identity only pays
    /// nothing; empty if it cannot be read.
    /// </summary>
    public ReadOnlySpan<byte> ReadPath()
    {
        int length = Supervision.ProcFs.ReadSelfFdLink(_fd, _proc, _buffer);
        return length > 0 ? _buffer[..length] : default;
    }

    /// <summary>The supervisor's descriptor of the opened file, valid during the call (a post decision may read the file through it).</summary>
    public int Descriptor => _fd;
}

/// <summary>The path operations the supervisor performs.</summary>
internal enum PathOperationKind
{
    /// <summary>rename, renameat, renameat2 (<see cref="PathOperationCall.Flags"/> holds RENAME_*).</summary>
    Rename,

    /// <summary>unlink, unlinkat without AT_REMOVEDIR.</summary>
    Unlink,

    /// <summary>rmdir, unlinkat with AT_REMOVEDIR.</summary>
    RemoveDirectory,

    /// <summary>truncate (<see cref="PathOperationCall.Length"/>).</summary>
    Truncate,

    /// <summary>chmod, fchmodat, fchmodat2 (<see cref="PathOperationCall.Mode"/>).</summary>
    ChangeMode,

    /// <summary>chown, lchown, fchownat (<see cref="PathOperationCall.Owner"/>, <see cref="PathOperationCall.Group"/>; uint.MaxValue = unchanged).</summary>
    ChangeOwner,

    /// <summary>utime, utimes, futimesat, utimensat, futimens (utimensat on a descriptor).</summary>
    ChangeTimes,

    /// <summary>fallocate (<see cref="PathOperationCall.Mode"/> holds its FALLOC_FL_* mode; offset and length).</summary>
    Allocate,

    /// <summary>setxattr, lsetxattr, fsetxattr, setxattrat (<see cref="PathOperationCall.AttributeName"/>).</summary>
    SetAttribute,

    /// <summary>removexattr, lremovexattr, fremovexattr, removexattrat (<see cref="PathOperationCall.AttributeName"/>).</summary>
    RemoveAttribute,

    /// <summary>link, linkat: <see cref="PathOperationCall.NewPath"/> is the name added.</summary>
    Link,

    /// <summary>mkdir, mkdirat.</summary>
    MakeDirectory,

    /// <summary>mknod, mknodat (<see cref="PathOperationCall.Mode"/> holds the type and permission bits).</summary>
    MakeNode,

    /// <summary>symlink, symlinkat (the link's text is not decoded for the decision).</summary>
    MakeSymbolicLink,
}

/// <summary>A path operation, decoded.</summary>
internal readonly ref struct PathOperationCall
{
    /// <summary>Which operation.</summary>
    public PathOperationKind Kind { get; init; }

    /// <summary>The path operated on as the guest spelled it (absolute against its directory when known); for AT_EMPTY_PATH, the path of the descriptor.</summary>
    public ReadOnlySpan<byte> Path { get; init; }

    /// <summary>For a rename or a link, the new path as the guest spelled it; empty otherwise.</summary>
    public ReadOnlySpan<byte> NewPath { get; init; }

    /// <summary>RENAME_* flags, the AT_* flags of the *at call, or XATTR_* flags.</summary>
    public uint Flags { get; init; }

    /// <summary>New mode for <see cref="PathOperationKind.ChangeMode"/>; the mode of <see cref="PathOperationKind.MakeDirectory"/> and <see cref="PathOperationKind.MakeNode"/>; the FALLOC_FL_* mode of <see cref="PathOperationKind.Allocate"/>.</summary>
    public uint Mode { get; init; }

    /// <summary>New owner for <see cref="PathOperationKind.ChangeOwner"/>.</summary>
    public uint Owner { get; init; }

    /// <summary>New group for <see cref="PathOperationKind.ChangeOwner"/>.</summary>
    public uint Group { get; init; }

    /// <summary>New length for <see cref="PathOperationKind.Truncate"/>; the length of the range for <see cref="PathOperationKind.Allocate"/>.</summary>
    public long Length { get; init; }

    /// <summary>The object (and destination) the paths name, resolved as the guest when asked.</summary>
    public FileObjectFacts? Facts { get; init; }

    /// <summary>True for a call on a descriptor (fchmod, ftruncate, ...): <see cref="Path"/> is empty and the facts are the file behind it.</summary>
    public bool OnDescriptor { get; init; }

    /// <summary>For an extended attribute, its name (UTF-8).</summary>
    public ReadOnlySpan<byte> AttributeName { get; init; }

    /// <summary>For an allocation, the start of the range.</summary>
    public long Offset { get; init; }
}

/// <summary>An exec, decoded.</summary>
internal readonly ref struct ExecCall
{
    /// <summary>The path as the guest named it, made absolute (for execveat AT_EMPTY_PATH: the descriptor's path).</summary>
    public ReadOnlySpan<byte> Path { get; init; }

    /// <summary>The canonical path of the image the supervisor resolved.</summary>
    public ReadOnlySpan<byte> ImagePath { get; init; }

    /// <summary>Identity of that image.</summary>
    public FileIdentity Image { get; init; }

    /// <summary>The type of that image.</summary>
    public Palisade.Api.FileObjectType ImageType { get; init; }

    /// <summary>The supervisor's O_PATH descriptor of that image, valid during the call (the file an execute decision reads).</summary>
    public int ImageDescriptor { get; init; }

    /// <summary>A command line given as it is (tests); empty to derive it from <see cref="Arguments"/>.</summary>
    public ReadOnlySpan<byte> CommandLine { get; init; }

    /// <summary>The arguments (argv), one string each, as read from the guest at the call; null when none were read.</summary>
    public IReadOnlyList<string>? Arguments { get; init; }

    /// <summary>The environment (envp), one string each; null when none was read.</summary>
    public IReadOnlyList<string>? EnvironmentVariables { get; init; }

    /// <summary>The calling thread's working directory as Linux resolves it; null when unknown.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>
    /// Every image the exec loads, in Linux's order (the file named, its <c>#!</c> interpreters, the ELF interpreter),
    /// with their canonical paths; null when the file named is all there is to say (an ELF without an interpreter read).
    /// </summary>
    public Palisade.Api.ImageLoadInfo[]? Images { get; init; }
}

/// <summary>How an exec ended (<see cref="ISyscallMediator.ExecCompleted"/>).</summary>
internal readonly struct ExecOutcome
{
    /// <summary>The canonical path of the image, or the path as the guest named it when it was never resolved.</summary>
    public string ImagePath { get; init; }

    /// <summary>Identity of the image; default when it was never resolved.</summary>
    public FileIdentity Image { get; init; }

    /// <summary>True when Linux replaced the process's program.</summary>
    public bool Succeeded { get; init; }

    /// <summary>The errno the guest got for a failure, when known; 0 otherwise.</summary>
    public int Errno { get; init; }
}

/// <summary>A file about to be mapped executable, identified by the supervisor.</summary>
internal readonly ref struct ImageMappingCall
{
    /// <summary>The canonical path of the file (the descriptor's link, or the mapping's name in /proc/PID/maps).</summary>
    public ReadOnlySpan<byte> Path { get; init; }

    /// <summary>Identity of the file.</summary>
    public FileIdentity Image { get; init; }

    /// <summary>Its type.</summary>
    public Palisade.Api.FileObjectType Type { get; init; }
}

/// <summary>A network operation, decoded. Addresses are raw sockaddr bytes (family first); ports are decoded for AF_INET/AF_INET6.</summary>
internal readonly ref struct NetworkCall
{
    /// <summary>Which operation.</summary>
    public NetworkOperation Operation { get; init; }

    /// <summary>Socket domain (AF_INET = 2, AF_INET6 = 10, AF_UNIX = 1, ...).</summary>
    public int Family { get; init; }

    /// <summary>Socket type (SOCK_STREAM = 1, SOCK_DGRAM = 2, ...).</summary>
    public int SocketType { get; init; }

    /// <summary>Protocol (IPPROTO_TCP = 6, IPPROTO_UDP = 17, ...).</summary>
    public int Protocol { get; init; }

    /// <summary>The local sockaddr (bind: the requested one; otherwise getsockname); may be empty.</summary>
    public ReadOnlySpan<byte> LocalAddress { get; init; }

    /// <summary>The remote sockaddr (connect, send); empty otherwise.</summary>
    public ReadOnlySpan<byte> RemoteAddress { get; init; }

    /// <summary>Local port (host order) for inet families, else 0.</summary>
    public int LocalPort { get; init; }

    /// <summary>Remote port (host order) for inet families, else 0.</summary>
    public int RemotePort { get; init; }
}

/// <summary>Access rights a process operation needs on its target (the object-callback vocabulary).</summary>
[Flags]
internal enum ProcessRights
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>Send a signal other than a terminating one (or probe with signal 0).</summary>
    Signal = 1 << 0,

    /// <summary>Terminate (SIGKILL, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGABRT).</summary>
    Terminate = 1 << 1,

    /// <summary>Read the target's memory.</summary>
    ReadMemory = 1 << 2,

    /// <summary>Write the target's memory.</summary>
    WriteMemory = 1 << 3,

    /// <summary>Trace (ptrace) the target.</summary>
    Debug = 1 << 4,

    /// <summary>Obtain a handle (pidfd) to the target.</summary>
    OpenHandle = 1 << 5,

    /// <summary>Duplicate one of the target's descriptors (pidfd_getfd).</summary>
    DuplicateHandle = 1 << 6,
}

/// <summary>A process access, decoded.</summary>
/// <param name="SystemCall">The x86-64 system call number.</param>
/// <param name="TargetProcessId">The target pid as given (kill: may be 0 or negative for process groups; tkill: the thread's process when known, else 0).</param>
/// <param name="TargetThreadId">The target thread for tkill/tgkill, else 0.</param>
/// <param name="Signal">The signal number for signal calls, else 0.</param>
/// <param name="Rights">What the call needs on the target.</param>
internal readonly record struct ProcessAccessCall(int SystemCall, int TargetProcessId, int TargetThreadId, int Signal, ProcessRights Rights);

/// <summary>How a process or thread is created.</summary>
internal enum ProcessCreateKind
{
    /// <summary>fork, or clone without CLONE_THREAD.</summary>
    Process,

    /// <summary>vfork, or clone with CLONE_VFORK.</summary>
    VforkProcess,

    /// <summary>clone with CLONE_THREAD.</summary>
    Thread,
}

/// <summary>A creation, decoded.</summary>
/// <param name="Kind">Process, vfork process, or thread.</param>
/// <param name="CloneFlags">The clone flags (SIGCHLD for fork).</param>
internal readonly record struct ProcessCreateCall(ProcessCreateKind Kind, ulong CloneFlags);
