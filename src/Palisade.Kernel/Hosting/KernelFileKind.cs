namespace Palisade.Kernel.Hosting;

/// <summary>
/// What a file-system object is to the kernel (<see cref="KernelHost.KernelFileKindOf"/>): part of its own state, which no
/// guest may change, or nothing of the kernel's. Objects are known by identity (device and inode), so a hard link, a bind
/// mount or another spelling of the path names the same object.
/// </summary>
public enum KernelFileKind
{
    /// <summary>Not the kernel's.</summary>
    None,

    /// <summary>A file of the kernel's state (a trust store key, the registry hive, a crash dump, a loaded driver
    /// package's file, the event log): no guest writes, truncates, renames, removes or changes it.</summary>
    File,

    /// <summary>A folder of the kernel's state (its home and the folders in it, a loaded package's folders): no guest
    /// creates, renames or removes an entry in it, nor renames, removes or changes the folder itself.</summary>
    Folder,

    /// <summary>A folder on the path to the kernel's home: no guest renames or removes it (the next kernel would find
    /// another home at that path); what is in it is not the kernel's.</summary>
    Ancestor,

    /// <summary>A socket the kernel listens on for clients (a driver's communication port): guests may connect to it, and
    /// change nothing of it (no unlink, rename, chmod, chown).</summary>
    ClientPort,
}
