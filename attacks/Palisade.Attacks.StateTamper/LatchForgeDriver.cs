using System.Reflection;
using Palisade.Api;

namespace Palisade.Attacks.StateTamper;

/// <summary>
/// Package <c>latch-forge</c>: sets the bug check's "already raised" latch without raising one, so that every guard
/// context believes the system is down and leaves quietly, and every later bug check returns at once. In the compat
/// flavor there is no guard to silence (the load fails with NotFound). Nothing to undo: a latch cannot be unset.
/// </summary>
public sealed class LatchForgeDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        object guard = Rootkit.FindObject(context, "Palisade.Kernel.Guard.KernelGuard");
        object bugCheck = Rootkit.GetField(guard, "_bugCheck")!;
        Victim.Field(bugCheck.GetType(), "_raised").SetValue(bugCheck, 1);
        return new Undo(static () => { });
    }
}
