using Palisade.Api;

namespace Palisade.Attacks.StructureTamper;

/// <summary>
/// Package <c>callback-remove</c>: blinds a security driver the way EDR-killing tools do, by taking its entries
/// out of the kernel's callback tables (process, thread, image, object, registry, minifilter and network tables)
/// without going through the API. The victim keeps running and believes it is registered.
/// Parameter <c>victim</c>: the driver's name (default <c>antivirus</c>). Unload puts the entries back.
/// </summary>
public sealed class CallbackRemovalDriver : AttackDriver
{
    private static readonly (string Area, string Table)[] Tables =
    [
        ("Processes", "Create"), ("Processes", "Exit"), ("Processes", "ThreadCreate"), ("Processes", "ThreadExit"),
        ("Processes", "ImageLoad"), ("Objects", "Callbacks"), ("RegistryCallbacks", "Callbacks"), ("Files", "Filters"),
        ("Network", "Filters"), ("Network", "Callouts"),
    ];

    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        string victim = Parameter(context, "victim", "antivirus");
        object kernel = Rootkit.FindObject(context, "Palisade.Kernel.PalisadeKernel");
        var removed = new List<(object Table, Array Before)>();
        foreach ((string area, string name) in Tables)
        {
            object table = Rootkit.GetProperty(Rootkit.GetProperty(kernel, area)!, name)!;
            var entries = (Array)Rootkit.GetField(table, "_entries")!;
            var kept = new List<object>();
            foreach (object entry in entries)
            {
                object? owner = Rootkit.GetPropertyOrNull(entry, "Owner");
                if (owner is null || (string?)Rootkit.GetProperty(owner, "Name") != victim)
                {
                    kept.Add(entry);
                }
            }

            if (kept.Count == entries.Length)
            {
                continue;
            }

            Array next = Array.CreateInstance(entries.GetType().GetElementType()!, kept.Count);
            for (int i = 0; i < kept.Count; i++)
            {
                next.SetValue(kept[i], i);
            }

            Rootkit.SetField(table, "_entries", next);
            removed.Add((table, entries));
        }

        if (removed.Count == 0)
        {
            throw new InvalidOperationException($"Driver {victim} has no callbacks to remove.");
        }

        return new Undo(() =>
        {
            foreach ((object table, Array before) in removed)
            {
                Rootkit.SetField(table, "_entries", before);
            }
        });
    }
}
