namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// Preallocated buffers for decoding one notification. The loop thread owns one; each worker thread
/// (blocking opens and connects) owns its own, so that decoding never allocates on the hot path.
/// </summary>
internal sealed class Scratch
{
    /// <summary>PATH_MAX including the terminating NUL.</summary>
    public const int PathMax = 4096;

    public readonly byte[] Path = new byte[PathMax + 1];
    public readonly byte[] Path2 = new byte[PathMax + 1];
    public readonly byte[] Absolute = new byte[(2 * PathMax) + 2];
    public readonly byte[] Absolute2 = new byte[(2 * PathMax) + 2];
    public readonly byte[] Resolved = new byte[PathMax + 1];
    public readonly byte[] Directory = new byte[PathMax + 1];
    public readonly byte[] Directory2 = new byte[PathMax + 1];
    public readonly byte[] Proc = new byte[64];
    public readonly byte[] Proc2 = new byte[64];
    public readonly byte[] Status = new byte[4096];
    public readonly byte[] Address = new byte[128];
    public readonly byte[] LocalAddress = new byte[128];
    public readonly byte[] Small = new byte[4096];

    /// <summary>An extended attribute's value (XATTR_SIZE_MAX).</summary>
    public readonly byte[] Value = new byte[65536];

    /// <summary>The object a guest's path names, resolved as the guest on demand (one operation at a time).</summary>
    public readonly Authority.GuestFileFacts Names = new();

    /// <summary>The file the supervisor opened for a guest (its post decision).</summary>
    public readonly Authority.DescriptorFacts Opened = new();

    /// <summary>The file behind a guest's descriptor (a call on a descriptor, a reopen through /proc/self/fd).</summary>
    public readonly Authority.DescriptorFacts Reopened = new();
}
