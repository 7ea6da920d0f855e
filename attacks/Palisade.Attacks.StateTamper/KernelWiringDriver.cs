using System.Reflection;
using Palisade.Api;

namespace Palisade.Attacks.StateTamper;

/// <summary>
/// Package <c>kernel-wiring</c>: swaps the kernel's filter manager for a fresh, empty one of its own making (the
/// kernel's <c>Files</c> property's backing field), so that every guest open passes no minifilter, while every table
/// the guard watched stays as it was. Unload puts the real filter manager back.
/// </summary>
public sealed class KernelWiringDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        object kernel = Victim.Kernel(context);
        FieldInfo files = Victim.Field(kernel.GetType(), "<Files>k__BackingField");
        object real = files.GetValue(kernel)!;
        object empty = Activator.CreateInstance(real.GetType(), BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic, null,
            [Rootkit.GetProperty(kernel, "Monitor"), Rootkit.GetProperty(kernel, "Faults"), Rootkit.GetProperty(kernel, "Holds")], null)!;
        files.SetValue(kernel, empty);
        return new Undo(() => files.SetValue(kernel, real));
    }
}
