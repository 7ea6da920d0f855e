namespace Palisade.Attacks.GuardTamper;

/// <summary>
/// Tries to switch the guard off by reflection: walks private fields from an object the driver can reach to the
/// guard, sets its shutdown flag and signals the event its contexts wait on, as if the kernel were shutting down.
/// </summary>
/// <param name="reachable">Any object from which the guard can be reached through fields (for a driver, its context).</param>
public sealed class GuardStopAttack(object reachable)
{
    /// <summary>Sends the forged shutdown.</summary>
    public void Install()
    {
        object guard = Rootkit.FindObject(reachable, "Palisade.Kernel.Guard.KernelGuard");
        Rootkit.SetField(guard, "_shutdownRequested", true);
        var halt = (ManualResetEventSlim)Rootkit.GetField(guard, "_halt")!;
        halt.Set();
    }
}
