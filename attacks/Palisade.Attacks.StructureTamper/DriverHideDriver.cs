using Palisade.Api;

namespace Palisade.Attacks.StructureTamper;

/// <summary>
/// Package <c>driver-hide</c>: hides itself from the loaded driver list (PsLoadedModuleList) by unlinking its own
/// entry, as rootkits do once loaded. Unload links it back in.
/// </summary>
public sealed class DriverHideDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        object self = Rootkit.GetProperty(context, "Driver")!;
        object list = Rootkit.FindObject(context, "Palisade.Kernel.Drivers.LoadedDriverList");
        LinkedList.Unlink(list, self);
        return new Undo(() => LinkedList.LinkAtHead(list, self));
    }
}
