using Palisade.Api;
using Palisade.Kernel.Io;

namespace Palisade.Kernel.Dispatch;

/// <summary>
/// The arguments and results of one system service call (the trap frame plus the service's parameters). A front
/// end keeps one per thread and reuses it, so a call allocates nothing.
/// </summary>
internal struct ServiceFrame
{
    /// <summary>The calling guest process (0 for the kernel or an administrative tool).</summary>
    public int ProcessId;

    /// <summary>The calling guest thread.</summary>
    public int ThreadId;

    /// <summary>The real user id of the caller.</summary>
    public int UserId;

    /// <summary>File services: the operation as minifilters see it.</summary>
    public FileOperation File;

    /// <summary>File services: what performs the operation once the filters let it pass.</summary>
    public IFileSystemPerformer? FilePerformer;

    /// <summary>
    /// BeginFileOperation / CompleteFileOperation: the operation the host performs itself between the two halves, with
    /// what the filter manager remembers of it; on return from BeginFileOperation, whether a completion must follow.
    /// </summary>
    public Hosting.FileRequest? FileRequest;

    /// <summary>CleanupFile: the guest's descriptor being closed (for crash dumps).</summary>
    public int Descriptor;

    /// <summary>CreateProcess: the image about to run.</summary>
    public ProcessCreateInfo Create;

    /// <summary>
    /// CreateProcess: every image the exec loads, in Linux's order (the file named, its <c>#!</c> interpreters, the ELF
    /// interpreter); null for the named file alone, as an executable. LoadImage: null.
    /// </summary>
    public ImageLoadInfo[]? Images;

    /// <summary>LoadImage: the file a process maps executable.</summary>
    public ImageLoadInfo Image;

    /// <summary>ExecResult: the exec and its outcome (the kernel sets the start key).</summary>
    public ExecResultInfo ExecResult;

    /// <summary>AttachProcess: the parent of <see cref="TargetProcessId"/> (0 when unknown).</summary>
    public int ParentProcessId;

    /// <summary>ForkProcess / AttachProcess: the image of the process when the kernel cannot take it from the parent.</summary>
    public string? ImagePath;

    /// <summary>ForkProcess / CreateThread / ExitProcess / ExitThread / OpenProcess / OpenThread: the other party.</summary>
    public int TargetProcessId;

    /// <summary>CreateThread / ExitThread / OpenThread: the thread.</summary>
    public int TargetThreadId;

    /// <summary>ExitProcess: the exit code and signal. OpenProcess / OpenThread: the signal of a signal access.</summary>
    public int ExitCode, Signal;

    /// <summary>OpenProcess / OpenThread / DuplicateHandle: the access asked for, then the access granted.</summary>
    public ProcessAccessRights DesiredAccess, GrantedAccess;

    /// <summary>OpenProcess / OpenThread / DuplicateHandle: the guest operation that asks for the access.</summary>
    public ObjectAccessKind AccessKind;

    /// <summary>OpenProcess / OpenThread: the handle made in the caller's handle table (0 when none was kept).</summary>
    public int Handle;

    /// <summary>OpenProcess: true to keep the handle open after the call; the host closes short-lived handles itself.</summary>
    public bool KeepHandle;

    /// <summary>NetworkClassify: the operation.</summary>
    public NetworkClassifyContext Network;

    /// <summary>NetworkClassify: the filter that decided, for the event stream.</summary>
    public string? DecidingFilter;

    /// <summary>NetworkClassify: the driver of the filter that decided.</summary>
    public string? DecidingDriver;

    /// <summary>Registry services: the request.</summary>
    public Registry.RegistryRequest? Registry;
}
