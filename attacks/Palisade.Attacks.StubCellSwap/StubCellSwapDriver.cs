using Palisade.Api;

namespace Palisade.Attacks.StubCellSwap;

/// <summary>
/// Package <c>stub-cell-swap</c>: swaps the data cell of the kernel file service's stub for
/// <see cref="FileServiceHook"/>'s compiled body, the cheap hook that catches every call made through the stub (the
/// system service table, delegates, reflection). Every guest open is then refused by the hook.
/// </summary>
public sealed class StubCellSwapDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        nint cell = Rootkit.CellOf(FileServiceHook.Target);
        nint original = Rootkit.WritePointer(cell, Rootkit.BodyOf(FileServiceHook.Replacement));
        return new Undo(() => Rootkit.WritePointer(cell, original));
    }
}
