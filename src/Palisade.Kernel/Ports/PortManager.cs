// The kernel's communication ports (IPortManager): every port of every driver, the folder their sockets live in
// ($PALISADE_HOME/ports, mode 0711, the kernel's), and the identities of their socket files, which the host lets guests
// connect to and change nothing of (KernelFileKind.ClientPort). A port's name is owned by the kernel that holds the
// flock of ports/.NAME.lock: two runs on one home cannot both listen on NAME, and a socket left by a run that died is
// replaced by the next owner.
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Events;
using Palisade.Kernel.Io;

namespace Palisade.Kernel.Ports;

internal sealed class PortManager
{
    public const string FolderName = "ports";

    /// <summary>The most ports one driver may have at once.</summary>
    public const int PerDriverLimit = 16;

    private const string P256 = "1.2.840.10045.3.1.7";
    private const UnixFileMode FolderMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
    private const UnixFileMode SocketMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    private readonly string? _home;
    private readonly KernelFiles _files;
    private readonly Lock _sync = new();
    private CommunicationPort[] _ports = [];

    public PortManager(string? home, KernelFiles files, EventStream events)
    {
        _home = home;
        _files = files;
        Events = events;
    }

    public EventStream Events { get; }

    /// <summary>The folder of the ports' sockets of <paramref name="home"/>.</summary>
    public static string FolderOf(string home) => Path.Combine(Path.GetFullPath(home), FolderName);

    /// <summary>True when <paramref name="identity"/> is the socket file of a listening port. Allocates nothing.</summary>
    public bool Contains(FileIdentity identity)
    {
        foreach (CommunicationPort p in Volatile.Read(ref _ports))
        {
            if (p.Identity == identity)
            {
                return true;
            }
        }

        return false;
    }

    public Status Create(DriverContext owner, string? name, PortOptions? options, PortCallbacks? callbacks, out IPort? port)
    {
        port = null;
        if (options is null || callbacks is null || name is null)
        {
            return Status.InvalidParameter;
        }

        if (!IsValidName(name))
        {
            return Status.ObjectNameInvalid;
        }

        Status valid = Validate(options, out ECDsa? key);
        if (valid.IsError)
        {
            return valid;
        }

        lock (_sync)
        {
            Status s = Bind(owner, name, options, callbacks, key, out CommunicationPort? created);
            if (s.IsError)
            {
                key?.Dispose();
                return s;
            }

            Volatile.Write(ref _ports, [.. _ports, created!]);
            created!.Start();
            port = created;
            return Status.Success;
        }
    }

    /// <summary>Closes every port of <paramref name="driver"/> and ends their connections without telling it; how many ports.</summary>
    public int CloseOwnedBy(DriverObject driver)
    {
        CommunicationPort[] owned = Array.FindAll(Volatile.Read(ref _ports), p => p.Owner == driver);
        foreach (CommunicationPort p in owned)
        {
            p.CloseForUnload();
        }

        return owned.Length;
    }

    /// <summary>A port closed: it no longer names a socket of the kernel's.</summary>
    public void Removed(CommunicationPort port)
    {
        lock (_sync)
        {
            Volatile.Write(ref _ports, Array.FindAll(_ports, p => p != port));
        }
    }

    /// <summary>A port's name: 1 to 64 of A-Z a-z 0-9 . - _, starting with a letter or digit (a driver name's rule).</summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64 && char.IsAsciiLetterOrDigit(name[0])
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_');

    private static Status Validate(PortOptions o, out ECDsa? key)
    {
        key = null;
        if (o.MaximumConnections is < 1 or > PortOptions.MaximumConnectionsLimit
            || (o.AllowedUserIds?.Count ?? 0) > PortOptions.AllowedIdsLimit || (o.AllowedGroupIds?.Count ?? 0) > PortOptions.AllowedIdsLimit)
        {
            return Status.InvalidParameter;
        }

        if (o.ClientKey is null)
        {
            return Status.Success;
        }

        var k = ECDsa.Create();
        try
        {
            k.ImportSubjectPublicKeyInfo(o.ClientKey, out int read);
            if (read == o.ClientKey.Length && k.ExportParameters(false).Curve.Oid.Value == P256)
            {
                key = k;
                return Status.Success;
            }
        }
        catch (CryptographicException)
        {
            // Not a public key of an algorithm and curve the kernel verifies.
        }

        k.Dispose();
        return Status.InvalidParameter;
    }

    private Status Bind(DriverContext owner, string name, PortOptions options, PortCallbacks callbacks, ECDsa? key, out CommunicationPort? port)
    {
        port = null;
        if (Array.Exists(_ports, p => string.Equals(p.Name, name, StringComparison.Ordinal)))
        {
            return Status.ObjectNameCollision;
        }

        if (Array.FindAll(_ports, p => p.Owner == owner.Driver).Length >= PerDriverLimit)
        {
            return Status.TooManyRegistrations;
        }

        string? folder = PrepareFolder(out string? unfit);
        if (folder is null || !OperatingSystem.IsLinux())
        {
            Console.Error.WriteLine("palisade: no communication ports (" + unfit + ")");
            return Status.NotSupported;
        }

        string path = Path.Combine(folder, name);
        SafeFileHandle nameLock;
        try
        {
            nameLock = File.OpenHandle(Path.Combine(folder, "." + name + ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite, FileOptions.None, 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Status.InsufficientResources;
        }

        if (FileLock.TryLockExclusive(nameLock) != 0)
        {
            nameLock.Dispose();
            return Status.ObjectNameCollision; // Another run on this home listens on the name.
        }

        Socket listener = new(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            File.Delete(path); // Left by a run that ended: the name's lock proves it is nobody's.
            listener.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, SocketMode);
            if (Libc.FileIdentityOf(path, out FileIdentity identity, out _) != 0)
            {
                throw new IOException("its socket file cannot be examined");
            }

            listener.Listen(PortOptions.MaximumConnectionsLimit);
            port = new CommunicationPort(this, owner, name, path, options, callbacks, key, listener, nameLock, identity);
            return Status.Success;
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            listener.Dispose();
            nameLock.Dispose();
            return Status.InsufficientResources;
        }
    }

    /// <summary>Creates (0711) and checks the ports folder: a real folder, the kernel's user's, writable by nobody else.
    /// Recorded as a folder of the kernel's, so that no guest adds, renames or removes an entry in it.</summary>
    private string? PrepareFolder(out string? unfit)
    {
        unfit = null;
        if (_home is null || !OperatingSystem.IsLinux())
        {
            unfit = "the kernel has no home";
            return null;
        }

        string folder = FolderOf(_home);
        try
        {
            if (!Directory.Exists(folder))
            {
                Directory.CreateDirectory(folder, FolderMode);
                File.SetUnixFileMode(folder, FolderMode);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            unfit = "cannot create " + folder + ": " + e.Message;
            return null;
        }

        int error = Libc.OwnerAndMode(folder, out uint uid, out uint mode, out FileIdentity identity);
        if (error != 0 || (mode & 0xF000) != 0x4000 || uid != Libc.GetEUid() || (mode & 0x12) != 0)
        {
            unfit = folder + " is not a folder of the kernel's user that only it may write to";
            return null;
        }

        _files.Add(identity, Hosting.KernelFileKind.Folder);
        return folder;
    }
}
