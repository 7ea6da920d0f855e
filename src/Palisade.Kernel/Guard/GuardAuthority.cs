namespace Palisade.Kernel.Guard;

/// <summary>
/// The capability to change what the guard protects: re-baseline a region after a legitimate change, or shut the
/// guard down with the kernel. Each guard issues exactly one, to whoever started it (the kernel), and compares by
/// reference; nothing else can make one.
/// </summary>
internal sealed class GuardAuthority
{
    private GuardAuthority()
    {
    }

    internal static GuardAuthority IssueOnce(ref int issued) =>
        Interlocked.Exchange(ref issued, 1) == 0
            ? new GuardAuthority()
            : throw new InvalidOperationException("This guard has already issued its authority.");
}
