using Palisade.Api;
using Palisade.Interop;

namespace Palisade.Kernel.Control;

/// <summary>A Unix socket the kernel listens on: its path and the identity (device, inode) of its socket file.</summary>
internal readonly record struct KernelSocket(string Path, FileIdentity Identity);

/// <summary>
/// The Unix sockets this kernel listens on, for the host: guests must never connect to them (docs/security.md), and
/// the host's mediation of connect(2) refuses a guest whose address resolves to one of these identities. The list
/// changes while the kernel runs (a kernel that takes over a shared hive starts listening then).
/// </summary>
internal sealed class KernelSockets
{
    private readonly Lock _lock = new();
    private KernelSocket[] _sockets = [];

    /// <summary>Raised after a socket is added or removed.</summary>
    public event Action? Changed;

    /// <summary>The sockets right now.</summary>
    public IReadOnlyList<KernelSocket> Snapshot => Volatile.Read(ref _sockets);

    /// <summary>True when <paramref name="identity"/> is the socket file of one of the kernel's sockets.</summary>
    public bool Contains(FileIdentity identity)
    {
        foreach (KernelSocket s in Volatile.Read(ref _sockets))
        {
            if (s.Identity == identity)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Records a socket the kernel has bound at <paramref name="path"/>; false when its file cannot be
    /// examined (then the kernel must not listen on it).</summary>
    public bool Add(string path, out FileIdentity identity)
    {
        if (Libc.FileIdentityOf(path, out identity, out _) != 0)
        {
            return false;
        }

        lock (_lock)
        {
            Volatile.Write(ref _sockets, [.. _sockets, new KernelSocket(path, identity)]);
        }

        Changed?.Invoke();
        return true;
    }

    public void Remove(string path)
    {
        lock (_lock)
        {
            Volatile.Write(ref _sockets, [.. _sockets.Where(s => !string.Equals(s.Path, path, StringComparison.Ordinal))]);
        }

        Changed?.Invoke();
    }
}
