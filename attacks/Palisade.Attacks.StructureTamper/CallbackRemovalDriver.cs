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
            Array entries = TableEntries.Of(table);
            Array next = TableEntries.Where(entries, entry =>
                Rootkit.GetPropertyOrNull(entry, "Owner") is not { } owner || (string?)Rootkit.GetProperty(owner, "Name") != victim);
            if (next.Length == entries.Length)
            {
                continue;
            }

            TableEntries.Replace(table, next);
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
                TableEntries.Replace(table, before);
            }
        });
    }
}
