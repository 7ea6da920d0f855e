using Palisade.Interop;

namespace Palisade.Host.Linux.Authority;

/// <summary>
/// The credentials Linux checks when a thread touches a file system object or a socket on its own behalf: the
/// file-system uid and gid, the supplementary groups and the effective capabilities. The supervisor acts for a guest
/// with exactly these (<see cref="ActingThread"/>). Instances are interned: two guests with the same credentials share
/// one instance, so "does this thread already act with them" is a reference comparison on the hot path.
/// </summary>
/// <remarks>
/// A guest in a user namespace other than the supervisor's holds its capabilities only in that namespace; the
/// supervisor's threads cannot join it (a multithreaded process cannot enter a user namespace), so such a guest's
/// credentials are interned with no capabilities at all: the supervisor acts with its kernel uid and gid only, never
/// with a capability the guest does not hold in the initial namespace (docs/security.md, "Credentials").
/// </remarks>
internal sealed class ActingCredentials : IEquatable<ActingCredentials>
{
    private static readonly object InternGate = new();
    private static readonly Dictionary<ActingCredentials, ActingCredentials> Interned = [];
    private static ActingCredentials? s_kernel;

    private readonly uint[] _groups;

    private ActingCredentials(uint fileSystemUser, uint fileSystemGroup, uint[] groups, ulong effective)
    {
        FileSystemUser = fileSystemUser;
        FileSystemGroup = fileSystemGroup;
        _groups = groups;
        Effective = effective;
    }

    /// <summary>The credentials of the supervisor's own threads (the kernel's), as they were when first asked for.</summary>
    public static ActingCredentials Kernel => s_kernel ?? InitializeKernel();

    /// <summary>The permitted capabilities of the supervisor's threads: what an acting thread keeps so that it can come back.</summary>
    public static ulong KernelPermitted { get; private set; }

    /// <summary>The inheritable capabilities of the supervisor's threads (unchanged while acting).</summary>
    public static ulong KernelInheritable { get; private set; }

    /// <summary>The file-system uid.</summary>
    public uint FileSystemUser { get; }

    /// <summary>The file-system gid.</summary>
    public uint FileSystemGroup { get; }

    /// <summary>The supplementary groups, in the order Linux reported them.</summary>
    public ReadOnlySpan<uint> Groups => _groups;

    /// <summary>The effective capabilities (none for a guest outside the initial user namespace).</summary>
    public ulong Effective { get; }

    /// <summary>The interned instance for these values.</summary>
    public static ActingCredentials Intern(uint fileSystemUser, uint fileSystemGroup, ReadOnlySpan<uint> groups, ulong effective)
    {
        var candidate = new ActingCredentials(fileSystemUser, fileSystemGroup, groups.ToArray(), effective);
        lock (InternGate)
        {
            if (Interned.TryGetValue(candidate, out ActingCredentials? existing))
            {
                return existing;
            }

            Interned.Add(candidate, candidate);
            return candidate;
        }
    }

    /// <summary>True when the groups of both are the same list (so setgroups can be skipped).</summary>
    public bool SameGroups(ActingCredentials other) => _groups.AsSpan().SequenceEqual(other._groups);

    public bool Equals(ActingCredentials? other) =>
        other is not null && FileSystemUser == other.FileSystemUser && FileSystemGroup == other.FileSystemGroup
        && Effective == other.Effective && SameGroups(other);

    public override bool Equals(object? obj) => Equals(obj as ActingCredentials);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(FileSystemUser);
        hash.Add(FileSystemGroup);
        hash.Add(Effective);
        foreach (uint g in _groups)
        {
            hash.Add(g);
        }

        return hash.ToHashCode();
    }

    public override string ToString() =>
        $"fsuid={FileSystemUser} fsgid={FileSystemGroup} groups=[{string.Join(',', _groups)}] cap_effective={Effective:x}";

    private static ActingCredentials InitializeKernel()
    {
        // Read with the raw system calls on the calling thread: every supervisor thread has the process's credentials
        // (nothing in the supervisor changes them process-wide), and acting threads always come back to these.
        if (ThreadCredentials.GetCapabilities(out ulong effective, out ulong permitted, out ulong inheritable) != 0)
        {
            throw new InvalidOperationException("capget on the supervisor's own thread failed: errno " + Libc.LastError);
        }

        Span<uint> groups = stackalloc uint[65536];
        int count = ThreadCredentials.GetGroups(groups);
        if (count < 0)
        {
            throw new InvalidOperationException("getgroups failed: errno " + -count);
        }

        uint fsuid = (uint)Libc.Syscall(Sys.Setfsuid, -1, 0, 0, 0, 0, 0);
        uint fsgid = (uint)Libc.Syscall(Sys.Setfsgid, -1, 0, 0, 0, 0, 0);
        KernelPermitted = permitted;
        KernelInheritable = inheritable;
        ActingCredentials kernel = Intern(fsuid, fsgid, groups[..count], effective);
        Interlocked.CompareExchange(ref s_kernel, kernel, null);
        return s_kernel!;
    }
}
