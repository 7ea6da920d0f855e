using System.Reflection;
using System.Runtime.CompilerServices;
using Palisade.Api;

namespace Palisade.Attacks.StateTamper;

/// <summary>
/// Package <c>registration-tamper</c>: blinds the antivirus without touching any table, by changing its minifilter's
/// private state. Parameter <c>how</c>: <c>disable</c> (the registration's disabled flag, as if the kernel had
/// disabled it for faults), <c>slot</c> (its post-create callback slot emptied), or <c>pointer</c> (the code pointer
/// inside its post-create delegate rewritten to a method of the attacker's, the delegate object and its cached method
/// unchanged), or <c>scope</c> (every operation kind marked driver-I/O-only, FileOperationFlags.DriverIoOnly, so that a
/// guest's open passes the filter as if it were not registered). Parameter <c>victim</c>: the driver (default <c>antivirus</c>). Unload puts the state back.
/// </summary>
public sealed unsafe class RegistrationTamperDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        object filter = Victim.Minifilter(Victim.Kernel(context), Parameter(context, "victim", "antivirus"));
        switch (Parameter(context, "how", "disable"))
        {
            case "disable":
                FieldInfo disabled = Victim.Field(filter.GetType(), "_disabled");
                disabled.SetValue(filter, true);
                return new Undo(() => disabled.SetValue(filter, false));
            case "slot":
                var post = (Array)Rootkit.GetProperty(filter, "Post")!;
                object? callback = post.GetValue(0);
                post.SetValue(null, 0);
                return new Undo(() => post.SetValue(callback, 0));
            case "pointer":
                var victim = (Delegate)((Array)Rootkit.GetProperty(filter, "Post")!).GetValue(0)!;
                FieldInfo methodPtr = Victim.Field(typeof(Delegate), "_methodPtr");
                object? original = methodPtr.GetValue(victim);
                Delegate mine = Delegate.CreateDelegate(victim.GetType(), this, typeof(RegistrationTamperDriver).GetMethod(nameof(Nothing), BindingFlags.Instance | BindingFlags.NonPublic)!);
                RuntimeHelpers.PrepareDelegate(mine);
                methodPtr.SetValue(victim, methodPtr.GetValue(mine));
                return new Undo(() => methodPtr.SetValue(victim, original));
            case "scope":
                FieldInfo scope = Victim.Field(filter.GetType(), "<DriverIoOnly>k__BackingField");
                object? was = scope.GetValue(filter);
                scope.SetValue(filter, -1);
                return new Undo(() => scope.SetValue(filter, was));
            case string other:
                throw new InvalidOperationException($"Unknown tampering \"{other}\".");
        }

        throw new InvalidOperationException("No tampering named.");
    }

    // Takes the place of the victim's post-create: the open stands, whatever was scanned.
    private void Nothing(ref FileOperation operation) => GC.KeepAlive(this);
}
