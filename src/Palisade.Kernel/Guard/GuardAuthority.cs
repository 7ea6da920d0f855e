namespace Palisade.Kernel.Guard;

/// <summary>
/// The capability to change what the guard protects: re-baseline a region after a legitimate change, or shut the
/// guard down with the kernel. Each guard issues exactly one, to whoever started it (the kernel), and compares by
/// reference; nothing else can make one. Holding it is not enough to open a change window: the guard also demands a
/// caller in the kernel's assembly and a region that may change (see <see cref="KernelGuard.BeginChange"/>), so an
/// authority taken by reflection opens no window around a driver's own code.
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
