using Palisade.Api;

namespace Palisade.Attacks.GuardTamper;

/// <summary>
/// Package <c>guard-stop</c>: tries to switch the guard off by reflection. It walks private fields from its driver
/// context to the guard, sets the guard's shutdown flag and signals the event its contexts wait on, as if the
/// kernel were shutting down. In the compat flavor there is no guard, and the load fails with NotFound.
/// </summary>
public sealed class GuardStopDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        object guard = Rootkit.FindObject(context, "Palisade.Kernel.Guard.KernelGuard");
        Rootkit.SetField(guard, "_shutdownRequested", true);
        var halt = (ManualResetEventSlim)Rootkit.GetField(guard, "_halt")!;
        halt.Set();

        // A stopped guard cannot be started again from here: there is nothing to undo.
        return new Undo(static () => { });
    }
}
