namespace Palisade.Kernel.Dispatch;

/// <summary>
/// The kernel's system services, by logical name. The slot each occupies in the system service table is drawn at
/// random at every boot, so nothing outside the kernel can rely on a table layout.
/// </summary>
internal enum SystemService
{
    CreateFile,
    CleanupFile,
    RenameFile,
    DeleteFile,
    SetInformationFile,
    ReadFile,
    WriteFile,
    CreateProcess,
    ForkProcess,
    ExitProcess,
    CreateThread,
    ExitThread,
    OpenProcess,
    OpenThread,
    DuplicateHandle,
    NetworkClassify,
    CreateKey,
    OpenKey,
    DeleteKey,
    SetValueKey,
    DeleteValueKey,
    QueryValueKey,
    EnumerateKey,
    EnumerateValueKey,
    RenameKey,

    /// <summary>
    /// The first half of a file operation that the host performs itself (an open, a rename, a deletion, a change of
    /// information): the pre callbacks. A completion must follow unless a filter completed the operation.
    /// </summary>
    BeginFileOperation,

    /// <summary>The second half: with the outcome of the host's operation, the post callbacks.</summary>
    CompleteFileOperation,

    /// <summary>Enters a process the kernel did not see start (it ran before, or started natively) in the process table.</summary>
    AttachProcess,

    /// <summary>A process is about to map a file executable (a library, a dlopen): image-load callbacks decide.</summary>
    LoadImage,

    /// <summary>An exec ended (Linux performed it, or it failed): exec-result callbacks are told.</summary>
    ExecResult,
}
