using System.Reflection;
using Palisade.Api;

namespace Palisade.Attacks.StateTamper;

/// <summary>
/// Package <c>window-borrow</c>: tries to make its tampering look sanctioned. It takes the filter frame's gate (the
/// object the kernel's table opens the guard's change window with) and opens it itself, and steals the guard's
/// authority and asks for a window on the code of <c>FilterManager.PostOperation</c>; inside a window it would remove
/// the antivirus's minifilter from the frame and the guard would take the result as the new baseline. Whatever it was
/// granted, it removes the minifilter. Unload puts the frame back.
/// </summary>
public sealed class WindowBorrowDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        object kernel = Victim.Kernel(context);
        object table = Victim.FilterTable(kernel);
        object filter = Victim.Minifilter(kernel, Parameter(context, "victim", "antivirus"));
        FieldInfo entries = Victim.Field(table.GetType(), "_entries");
        var before = (Array)entries.GetValue(table)!;
        Array without = Array.CreateInstance(before.GetType().GetElementType()!, before.Length - 1);
        int j = 0;
        foreach (object? e in before)
        {
            if (!ReferenceEquals(e, filter))
            {
                without.SetValue(e, j++);
            }
        }

        // The compat flavor has no guard, hence no window to borrow: the removal alone is the attack there.
        if (Rootkit.GetPropertyOrNull(table, "ChangeGate") is { } gate)
        {
            object guard = Rootkit.FindObject(context, "Palisade.Kernel.Guard.KernelGuard");
            object authority = Rootkit.GetField(guard, "_authority")!;
            TryWindow(() => guard.GetType().GetMethod("BeginChange", BindingFlags.Instance | BindingFlags.NonPublic)!.Invoke(guard, [authority, CodeRegionOf(guard)]), () => { });
            TryWindow(() => gate.GetType().GetMethod("Open", BindingFlags.Instance | BindingFlags.NonPublic)!.Invoke(gate, null), () => entries.SetValue(table, without));
        }

        entries.SetValue(table, without);
        return new Undo(() => entries.SetValue(table, before));
    }

    /// <summary>Runs <paramref name="inside"/> within a window if one is granted (then closes it); a refusal is swallowed.</summary>
    private static void TryWindow(Func<object?> open, Action inside)
    {
        object? window;
        try
        {
            window = open();
        }
        catch (TargetInvocationException)
        {
            return;
        }

        inside();
        (window as IDisposable)?.Dispose();
    }

    private static int CodeRegionOf(object guard)
    {
        var regions = (Array)Rootkit.GetField(guard, "_regions")!;
        for (int i = 0; i < regions.Length; i++)
        {
            if (regions.GetValue(i) is { } r && (string?)Rootkit.GetProperty(r, "Name") == "Palisade.Kernel.Io.FilterManager.PostOperation")
            {
                return i;
            }
        }

        throw new InvalidOperationException("FilterManager.PostOperation is not protected.");
    }
}
