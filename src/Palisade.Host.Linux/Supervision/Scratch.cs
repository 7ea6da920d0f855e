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
}
