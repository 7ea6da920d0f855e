// The vocabulary of the hosting surface: who asks, and what. These types speak the kernel's terms (requester, open,
// path operation, image, network operation, process access), not the host's: a host decodes its own system calls
// into them.
using System.Net;
using Palisade.Api;

namespace Palisade.Kernel.Hosting;

/// <summary>The guest thread on whose behalf the host makes a request.</summary>
/// <param name="ProcessId">The guest process (its thread-group id, the pid as ps shows it).</param>
/// <param name="ThreadId">The guest thread that made the call.</param>
public readonly record struct Requester(int ProcessId, int ThreadId)
{
    /// <summary>The user the guest runs as (its real user id); the drivers' callbacks see it.</summary>
    public int UserId { get; init; }

    /// <summary>
    /// The host's name for the guest's call this request serves (for the Linux host, the seccomp notification id); 0 when
    /// the host does not name calls. <see cref="KernelHost.CancelWaiting"/> cancels only a hold made for the call it names,
    /// so that a late word about a call already answered cannot cancel the same thread's next call.
    /// </summary>
    public ulong CallId { get; init; }
}

/// <summary>What a host must mediate so that the drivers' registrations see every operation they asked for.</summary>
/// <remarks>The set follows the registrations at the moment it is read (<see cref="KernelHost.Interests"/>).</remarks>
[Flags]
public enum HostInterests
{
    /// <summary>No driver watches anything the host decides.</summary>
    None = 0,

    /// <summary>Opens: a minifilter watches create (or read or write) operations.</summary>
    FileOpen = 1 << 0,

    /// <summary>
    /// Opens with their completion: the opened file's identity must reach the kernel (<see cref="KernelHost.CompleteOpen"/>).
    /// Always together with <see cref="FileOpen"/>.
    /// </summary>
    FileOpenCompletion = 1 << 1,

    /// <summary>Renames, deletions and changes of size, mode or owner: a minifilter watches one of them.</summary>
    PathOperations = 1 << 2,

    /// <summary>The last close of a file written to: a minifilter watches cleanup.</summary>
    FileCleanup = 1 << 3,

    /// <summary>Process creation (an image starts running): process-create or image-load callbacks are registered.</summary>
    ProcessCreation = 1 << 4,

    /// <summary>Connect, bind, listen, accept and sends with an address: a network filter is registered.</summary>
    Network = 1 << 5,

    /// <summary>Access to another process (signals, debugging, memory, handles): an object callback is registered.</summary>
    ProcessAccess = 1 << 6,

    /// <summary>Ends of processes and threads: exit, thread-create or thread-exit callbacks are registered.</summary>
    ProcessExits = 1 << 7,

    /// <summary>
    /// Executable mappings of files (shared libraries, dlopen, mprotect of a file mapping to executable): image-load callbacks
    /// are registered (<see cref="KernelHost.LoadImage"/>). Always together with <see cref="ProcessCreation"/>.
    /// </summary>
    ImageMappings = 1 << 8,
}

/// <summary>
/// The facts of the object a file operation acts on, as the host resolves them for the guest (its root, working
/// directory and credentials): what minifilters read as <see cref="FileOperation.Path"/>, <see cref="FileOperation.File"/>,
/// <see cref="FileOperation.FileType"/> and <see cref="FileOperation.FileSystemType"/>. The kernel asks only when a
/// filter reads one, at most once each per operation (an implementation resolves on the first call and keeps the
/// result), and only during the operation's callbacks, on the thread that runs them.
/// </summary>
public abstract class FileObjectFacts
{
    /// <summary>The object's path as Linux resolved it (see <see cref="FileOperation.Path"/>), or null when it could not be resolved.</summary>
    /// <returns>The path, or null.</returns>
    public abstract string? ResolvedPath();

    /// <summary>For a rename or a link, the destination resolved the same way, or null.</summary>
    /// <returns>The path, or null.</returns>
    public abstract string? ResolvedNewPath();

    /// <summary>The object's identity; none when the name does not exist.</summary>
    /// <returns>The identity.</returns>
    public abstract FileIdentity Identity();

    /// <summary>The object's type (see <see cref="FileOperation.FileType"/>).</summary>
    /// <returns>The type.</returns>
    public abstract FileObjectType Type();

    /// <summary>The statfs f_type of the file system holding the object (of its directory for a new name), or 0.</summary>
    /// <returns>The file system type.</returns>
    public abstract long FileSystemType();
}

/// <summary>An open, as the host decoded it (<see cref="KernelHost.BeginOpen"/>).</summary>
public readonly struct OpenRequest
{
    /// <summary>The path as the guest named it, made absolute against its directory when known (not resolved).</summary>
    public string RequestedPath { get; init; }

    /// <summary>The object the path names, resolved on demand; null when the host resolves nothing before the open.</summary>
    public FileObjectFacts? Facts { get; init; }

    /// <summary>The access the open asks for.</summary>
    public FileAccessRights Access { get; init; }

    /// <summary>What the open does when the file exists or does not.</summary>
    public CreateDisposition Disposition { get; init; }

    /// <summary>The open flags as the guest gave them (Linux O_* values), for minifilters that look at them.</summary>
    public int OpenFlags { get; init; }
}

/// <summary>The file an exec is about to run, as the host resolved it (<see cref="KernelHost.ExecuteFile"/>).</summary>
public readonly struct ExecuteRequest
{
    /// <summary>The path as the guest named it, made absolute; null for an exec of a descriptor (execveat with AT_EMPTY_PATH).</summary>
    public string? RequestedPath { get; init; }

    /// <summary>The canonical path of the resolved image (for a memfd, <c>/memfd:NAME (deleted)</c>).</summary>
    public string Path { get; init; }

    /// <summary>The image's identity.</summary>
    public FileIdentity File { get; init; }

    /// <summary>The image's type.</summary>
    public FileObjectType Type { get; init; }

    /// <summary>The statfs f_type of its file system, 0 when unknown.</summary>
    public long FileSystemType { get; init; }

    /// <summary>
    /// The host's descriptor of the resolved image (O_PATH is enough), open until <see cref="KernelHost.ExecuteFile"/>
    /// returns: the kernel reads the image for a filter through a description it opens from it, so that what is read is
    /// the very file resolved.
    /// </summary>
    public int Descriptor { get; init; }
}

/// <summary>The last close of an open file description written through (<see cref="KernelHost.CleanupFile"/>).</summary>
public readonly struct CleanupRequest
{
    /// <summary>The canonical path of the file.</summary>
    public string Path { get; init; }

    /// <summary>The file's identity.</summary>
    public FileIdentity File { get; init; }

    /// <summary>The type of the file.</summary>
    public FileObjectType Type { get; init; }

    /// <summary>The statfs f_type of its file system, 0 when unknown.</summary>
    public long FileSystemType { get; init; }

    /// <summary>The guest's descriptor being closed, for crash dumps; -1 when the release is not a close the host saw (a process's exit, a watch's report).</summary>
    public int Descriptor { get; init; }

    /// <summary>
    /// The host's own read-only descriptor of the file, open until <see cref="KernelHost.CleanupFile"/> returns, through
    /// which a cleanup callback reads the file; -1 when the host has none (a read then returns <see cref="Status.AccessDenied"/>).
    /// </summary>
    public int Reader { get; init; }
}

/// <summary>The completion of an open: what the host really opened (<see cref="KernelHost.CompleteOpen"/>).</summary>
public readonly struct OpenCompletion
{
    /// <summary>The identity (device and inode) of the file the host opened.</summary>
    public FileIdentity File { get; init; }

    /// <summary>True when the opened object is a directory.</summary>
    public bool IsDirectory { get; init; }

    /// <summary>The type of the opened object.</summary>
    public FileObjectType Type { get; init; }

    /// <summary>The opened file's path and file system, read from the host's descriptor on demand; null when unknown.</summary>
    public FileObjectFacts? Facts { get; init; }

    /// <summary>
    /// The host's own descriptor of the opened file, open until <see cref="KernelHost.CompleteOpen"/> returns: a
    /// post callback that reads the file's content reads through it.
    /// </summary>
    public int Descriptor { get; init; }

    /// <summary>
    /// The file's change stamp when the host took it with the identity (one statx for both), before anything read the
    /// file for a filter; none (the default) lets the kernel take it from <see cref="Descriptor"/> when a filter asks.
    /// </summary>
    public FileChangeStamp ChangeStamp { get; init; }

    /// <summary>What the open did (created, opened or emptied the file), as the host learned it; <see cref="CreateResult.Unknown"/> when it did not.</summary>
    public CreateResult Result { get; init; }
}

/// <summary>
/// An operation the host performs itself between its two halves (<see cref="KernelHost.BeginPathOperation"/>): a
/// rename, a deletion, a change of information (by path or on a descriptor), or a create of a name that opens nothing
/// (mkdir, mknod, symlink).
/// </summary>
public readonly struct PathOperationRequest
{
    /// <summary><see cref="FileOperationKind.Rename"/>, <see cref="FileOperationKind.Delete"/>, <see cref="FileOperationKind.SetInformation"/> or <see cref="FileOperationKind.Create"/>.</summary>
    public FileOperationKind Kind { get; init; }

    /// <summary>The path as the guest named it (absolute against its directory when known, not resolved); null for a call on a descriptor.</summary>
    public string? RequestedPath { get; init; }

    /// <summary>For a rename or a link, the destination as the guest named it; null otherwise.</summary>
    public string? RequestedNewPath { get; init; }

    /// <summary>The object (and destination) as the host resolves them for the guest, on demand.</summary>
    public FileObjectFacts? Facts { get; init; }

    /// <summary>True when the operation removes a directory.</summary>
    public bool IsDirectory { get; init; }

    /// <summary>The raw flags of the call (RENAME_*, AT_*, XATTR_*), see <see cref="FileOperation.Flags"/>.</summary>
    public int Flags { get; init; }

    /// <summary>For <see cref="FileOperationKind.SetInformation"/>: what changes.</summary>
    public FileInformationClass InformationClass { get; init; }

    /// <summary>For <see cref="FileOperationKind.SetInformation"/>: the new value (see <see cref="FileInformationClass"/>).</summary>
    public long InformationValue { get; init; }

    /// <summary>For an extended attribute, its name.</summary>
    public string? AttributeName { get; init; }

    /// <summary>For an allocation, the start of its range.</summary>
    public long Offset { get; init; }

    /// <summary>For an allocation, the length of its range.</summary>
    public int Length { get; init; }

    /// <summary>For a create of a name (mkdir, mknod, symlink), the type it makes.</summary>
    public FileObjectType CreatesType { get; init; }
}

/// <summary>An image about to run in a process (<see cref="KernelHost.CreateProcess"/>).</summary>
public readonly struct ProcessImageRequest
{
    /// <summary>The parent of the process (0 when unknown).</summary>
    public int ParentProcessId { get; init; }

    /// <summary>The canonical path of the image.</summary>
    public string ImagePath { get; init; }

    /// <summary>The command line (arguments joined with spaces); derived from <see cref="Arguments"/> when null.</summary>
    public string? CommandLine { get; init; }

    /// <summary>The arguments (argv), one string each; null for none.</summary>
    public IReadOnlyList<string>? Arguments { get; init; }

    /// <summary>The environment (envp), one string each; null for none.</summary>
    public IReadOnlyList<string>? EnvironmentVariables { get; init; }

    /// <summary>The working directory of the calling thread; null when unknown.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>The identity of the image file.</summary>
    public FileIdentity Image { get; init; }

    /// <summary>The caller's credentials at the exec, or null when the host could not read them.</summary>
    public ProcessCredentials? Credentials { get; init; }

    /// <summary>
    /// Every image the exec loads, in Linux's order: the file named (<see cref="ImageLoadKind.Executable"/> or
    /// <see cref="ImageLoadKind.Script"/>), its <c>#!</c> interpreters, the ELF interpreter. Null for the file named alone,
    /// as an executable. The process id of each is the requester's.
    /// </summary>
    public ImageLoadInfo[]? Images { get; init; }
}

/// <summary>How an exec ended (<see cref="KernelHost.ExecCompleted"/>).</summary>
public readonly struct ExecOutcomeRequest
{
    /// <summary>The image the exec named: its canonical path, or the path as named when it was never resolved.</summary>
    public string ImagePath { get; init; }

    /// <summary>The identity of the image; default when it was never resolved.</summary>
    public FileIdentity Image { get; init; }

    /// <summary>True when Linux replaced the process's program.</summary>
    public bool Succeeded { get; init; }

    /// <summary>The errno the guest got for a failure, when known; 0 otherwise.</summary>
    public int Errno { get; init; }
}

/// <summary>A file a process is about to map executable (<see cref="KernelHost.LoadImage"/>).</summary>
public readonly struct ImageMappingRequest
{
    /// <summary>The canonical path of the file, as Linux reports the descriptor's or the mapping's file.</summary>
    public string ImagePath { get; init; }

    /// <summary>The identity of the file.</summary>
    public FileIdentity Image { get; init; }

    /// <summary>The type of the file.</summary>
    public FileObjectType FileType { get; init; }
}

/// <summary>The network operations a host reports.</summary>
public enum NetworkOperation
{
    /// <summary>connect: <see cref="NetworkRequest.RemoteAddress"/> is the peer.</summary>
    Connect,

    /// <summary>bind: <see cref="NetworkRequest.LocalAddress"/> is the address asked for.</summary>
    Bind,

    /// <summary>listen on the socket bound to <see cref="NetworkRequest.LocalAddress"/>.</summary>
    Listen,

    /// <summary>An incoming connection the host accepted for the guest: <see cref="NetworkRequest.RemoteAddress"/> is its
    /// peer, <see cref="NetworkRequest.LocalAddress"/> its local end.</summary>
    Accept,

    /// <summary>A send with an explicit destination <see cref="NetworkRequest.RemoteAddress"/> (classified at the connect layer).</summary>
    Send,
}

/// <summary>A network operation (<see cref="KernelHost.ClassifyNetwork"/>).</summary>
public readonly struct NetworkRequest
{
    /// <summary>The operation.</summary>
    public NetworkOperation Operation { get; init; }

    /// <summary>True for IPv6, false for IPv4 (other families are not network traffic the filter engine sees).</summary>
    public bool IsIPv6 { get; init; }

    /// <summary>The transport protocol.</summary>
    public NetworkProtocol Protocol { get; init; }

    /// <summary>The local address, when known.</summary>
    public IPAddress? LocalAddress { get; init; }

    /// <summary>The local port (host order), 0 when none.</summary>
    public int LocalPort { get; init; }

    /// <summary>The remote address, when known.</summary>
    public IPAddress? RemoteAddress { get; init; }

    /// <summary>The remote port (host order), 0 when none.</summary>
    public int RemotePort { get; init; }

    /// <summary>The canonical path of the requester's image.</summary>
    public string ApplicationPath { get; init; }

    /// <summary>The identity of the requester's image, default when unknown.</summary>
    public FileIdentity ApplicationFile { get; init; }

    /// <summary>The SHA-256 of the requester's image when the host computed it (see <see cref="KernelHost.TestsApplicationHash"/>); empty otherwise.</summary>
    public ReadOnlyMemory<byte> ApplicationHash { get; init; }

    /// <summary>The requester's argv, or null when unknown.</summary>
    public IReadOnlyList<string>? Arguments { get; init; }
}

/// <summary>
/// What a host offers for the drivers' process control (<see cref="IProcessCallbacks.TerminateProcess"/> and its
/// siblings): a signal sent through the process object the host holds (for Linux, a pidfd opened when the process was
/// first seen), never through a bare pid that Linux may have given to another process meanwhile.
/// </summary>
public interface IProcessControl
{
    /// <summary>Sends <paramref name="signal"/> to <paramref name="processId"/> through the process object the host holds.</summary>
    /// <param name="processId">The process, as the kernel's process table names it.</param>
    /// <param name="signal">The signal (SIGKILL, SIGSTOP, SIGCONT).</param>
    /// <returns>0; ESRCH when the process has ended; ENOENT when this host holds no object for it; another errno when
    /// Linux refused.</returns>
    int SendSignal(int processId, int signal);
}
