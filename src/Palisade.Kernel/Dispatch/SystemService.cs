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
}
