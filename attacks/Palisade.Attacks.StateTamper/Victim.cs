using System.Reflection;

namespace Palisade.Attacks.StateTamper;

/// <summary>Finds the victim's minifilter (the one with a post-create callback) in the kernel's filter frame.</summary>
internal static class Victim
{
    internal static object Kernel(object context) => Rootkit.FindObject(context, "Palisade.Kernel.PalisadeKernel");

    internal static object FilterTable(object kernel) => Rootkit.GetProperty(Rootkit.GetProperty(kernel, "Files")!, "Filters")!;

    internal static object Minifilter(object kernel, string victim)
    {
        var entries = (Array)Rootkit.GetProperty(FilterTable(kernel), "Snapshot")!;
        foreach (object? filter in entries)
        {
            if (filter is not null && Rootkit.GetPropertyOrNull(filter, "Owner") is { } owner && (string?)Rootkit.GetProperty(owner, "Name") == victim
                && ((Array)Rootkit.GetProperty(filter, "Post")!).GetValue(0) is not null)
            {
                return filter;
            }
        }

        throw new InvalidOperationException($"Driver {victim} has no post-create callback to tamper with.");
    }

    /// <summary>A field declared on the type or one of its bases.</summary>
    internal static FieldInfo Field(Type type, string name)
    {
        for (Type? t = type; t is not null; t = t.BaseType)
        {
            if (t.GetField(name, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly) is { } field)
            {
                return field;
            }
        }

        throw new InvalidOperationException($"{type.FullName} has no field {name}.");
    }
}
