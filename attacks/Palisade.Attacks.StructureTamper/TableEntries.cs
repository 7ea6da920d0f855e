namespace Palisade.Attacks.StructureTamper;

/// <summary>Rewriting a kernel callback table's entry array (CallbackTable&lt;T&gt;._entries) behind the API's back.</summary>
internal static class TableEntries
{
    internal static Array Of(object table) => (Array)Rootkit.GetField(table, "_entries")!;

    /// <summary>A new array of the same element type holding the entries <paramref name="keep"/> accepts, in order.</summary>
    internal static Array Where(Array entries, Func<object, bool> keep)
    {
        var kept = new List<object>();
        foreach (object entry in entries)
        {
            if (keep(entry))
            {
                kept.Add(entry);
            }
        }

        Array result = Array.CreateInstance(entries.GetType().GetElementType()!, kept.Count);
        for (int i = 0; i < kept.Count; i++)
        {
            result.SetValue(kept[i], i);
        }

        return result;
    }

    internal static void Replace(object table, Array entries) => Rootkit.SetField(table, "_entries", entries);
}
