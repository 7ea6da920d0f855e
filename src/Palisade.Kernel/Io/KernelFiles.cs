using System.Collections.Concurrent;
using Palisade.Api;
using Palisade.Kernel.Hosting;

namespace Palisade.Kernel.Io;

/// <summary>
/// The kernel's own objects on the host's file system: its home (trust store, registry hive, crash dumps, and whatever
/// else it keeps there) and the folders on the way to it, the files and folders of the driver packages it loaded, and
/// the files it writes for its administrator (the event log, a private copy of the hive). They are part of the kernel:
/// the host refuses any change a guest asks for on them (see docs/security.md, the kernel boundary). Objects are known by
/// identity, recorded when the kernel starts using them; files the kernel creates later in one of its folders are
/// covered by their folder.
/// </summary>
internal sealed class KernelFiles
{
    /// <summary>The most objects a home folder walk records; a larger home is recorded up to this many.</summary>
    public const int MaxWalk = 65536;

    private readonly ConcurrentDictionary<FileIdentity, KernelFileKind> _objects = new();
    private readonly ConcurrentDictionary<ulong, byte> _devices = new();

    /// <summary>What <paramref name="identity"/> is to the kernel. Allocates nothing; one lookup when its device holds no kernel object.</summary>
    public KernelFileKind KindOf(FileIdentity identity) =>
        !_devices.ContainsKey(identity.Device) ? KernelFileKind.None
        : _objects.TryGetValue(identity, out KernelFileKind kind) ? kind : KernelFileKind.None;

    /// <summary>Records one object.</summary>
    public void Add(FileIdentity identity, KernelFileKind kind)
    {
        if (kind == KernelFileKind.None)
        {
            return;
        }

        _devices.TryAdd(identity.Device, 0);

        // A folder that is also on the way to the home stays a folder: the stronger rule wins.
        _objects.AddOrUpdate(identity, kind, (_, old) => old == KernelFileKind.Folder || kind == KernelFileKind.Folder ? KernelFileKind.Folder : kind);
    }

    /// <summary>Records a file or folder by path (a final symbolic link is recorded itself, not followed); false when it cannot be examined.</summary>
    public bool Add(string path, KernelFileKind kind)
    {
        if (Palisade.Interop.Libc.FileIdentityOf(path, followLinks: false, out FileIdentity identity, out _) != 0)
        {
            return false;
        }

        Add(identity, kind);
        return true;
    }

    /// <summary>Records the file behind an open handle (a file the kernel writes, such as its event log); false when it cannot be examined.</summary>
    public bool Add(Microsoft.Win32.SafeHandles.SafeFileHandle handle, KernelFileKind kind)
    {
        if (Palisade.Interop.Libc.FileIdentityOf(handle, out FileIdentity identity, out _) != 0)
        {
            return false;
        }

        Add(identity, kind);
        return true;
    }

    /// <summary>
    /// Records the kernel's home: the folder, every folder and file in it, and each folder on the way to it (except
    /// the root). Returns how many objects it recorded.
    /// </summary>
    public int AddHome(string home)
    {
        ArgumentNullException.ThrowIfNull(home);
        // The home itself may be reached through a link: what is recorded is the folder it names.
        string full = new DirectoryInfo(Path.GetFullPath(home)).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(home);
        int recorded = AddTree(full);
        for (DirectoryInfo? d = new DirectoryInfo(full).Parent; d?.Parent is not null; d = d.Parent)
        {
            recorded += Add(d.FullName, KernelFileKind.Ancestor) ? 1 : 0;
        }

        return recorded;
    }

    /// <summary>Records a folder and everything in it (up to <see cref="MaxWalk"/> objects); how many were recorded.</summary>
    public int AddTree(string folder)
    {
        if (!Add(folder, KernelFileKind.Folder))
        {
            return 0;
        }

        int recorded = 1;
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        try
        {
            foreach (FileSystemInfo entry in new DirectoryInfo(folder).EnumerateFileSystemInfos("*", options))
            {
                if (recorded >= MaxWalk)
                {
                    break;
                }

                bool isFolder = entry is DirectoryInfo && entry.LinkTarget is null;
                recorded += Add(entry.FullName, isFolder ? KernelFileKind.Folder : KernelFileKind.File) ? 1 : 0;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A folder that vanished while it was walked: what was recorded stays.
        }

        return recorded;
    }
}
