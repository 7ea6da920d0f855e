using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Runtime.InteropServices;

namespace Palisade.Kernel.BugChecks;

/// <summary>
/// Names a suspect when a kernel structure was changed by reflection, which leaves no foreign code address to
/// follow (an entry removed from a table, a list unlinked, the guard's own state rewritten). A driver that reaches
/// into the kernel by reflection has to spell the kernel's internal type names and non-public member names as
/// strings; this reads the user-string heap of every loaded assembly outside the runtime and the kernel (drivers
/// loaded from their package bytes included) and ranks them by how many of those names they hold.
/// </summary>
internal static class ReflectionSuspects
{
    /// <summary>
    /// The loaded assembly that spells the most internal names of <paramref name="internals"/>, if any. Assemblies of the
    /// drivers loaded now (<paramref name="driverAssemblies"/>) come first: an unloaded driver's assembly may linger in
    /// memory until it is collected, and a bug check blames a driver that is there.
    /// </summary>
    internal static (string Assembly, IReadOnlyList<string> Names)? Find(IEnumerable<Type> internals, IReadOnlyCollection<string>? driverAssemblies = null)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (Type type in internals)
        {
            if (!type.IsPublic && !type.IsNestedPublic && type.FullName is { } fullName && !fullName.Contains('<', StringComparison.Ordinal))
            {
                names.Add(fullName);
            }

            foreach (FieldInfo field in type.GetFields(BindingFlags.Instance | BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (field.Name.Length >= 4)
                {
                    names.Add(field.Name);
                }
            }
        }

        Assembly kernel = typeof(ReflectionSuspects).Assembly;
        string runtimeDirectory = RuntimeEnvironment.GetRuntimeDirectory();
        (string Assembly, IReadOnlyList<string> Names)? best = null;
        (string Assembly, IReadOnlyList<string> Names)? bestDriver = null;
        foreach (Assembly assembly in AppDomain.CurrentDomain.GetAssemblies())
        {
            if (assembly == kernel || assembly.IsDynamic
                || (assembly.Location.Length > 0 && assembly.Location.StartsWith(runtimeDirectory, StringComparison.Ordinal)))
            {
                continue;
            }

            List<string> hits = NamesIn(assembly, names);
            string name = assembly.GetName().Name ?? assembly.Location;
            if (hits.Count > 0 && (best is null || hits.Count > best.Value.Names.Count))
            {
                best = (name, hits);
            }

            if (hits.Count > 0 && driverAssemblies is not null && driverAssemblies.Contains(name, StringComparer.OrdinalIgnoreCase)
                && (bestDriver is null || hits.Count > bestDriver.Value.Names.Count))
            {
                bestDriver = (name, hits);
            }
        }

        return bestDriver ?? best;
    }

    /// <summary>The suspect for a change anywhere in the kernel: every type of the kernel assembly counts.</summary>
    internal static (string Assembly, IReadOnlyList<string> Names)? FindForKernel(IReadOnlyCollection<string>? driverAssemblies = null) =>
        Find(typeof(ReflectionSuspects).Assembly.GetTypes(), driverAssemblies);

    private static unsafe List<string> NamesIn(Assembly assembly, HashSet<string> names)
    {
        var hits = new List<string>();
        // The metadata as the runtime holds it: works for assemblies loaded from a stream, which have no file.
        if (!assembly.TryGetRawMetadata(out byte* blob, out int length))
        {
            return hits;
        }

        try
        {
            var reader = new MetadataReader(blob, length);
            if (reader.GetHeapSize(HeapIndex.UserString) <= 1)
            {
                return hits;
            }

            UserStringHandle handle = MetadataTokens.UserStringHandle(1);
            while (!handle.IsNil)
            {
                string text = reader.GetUserString(handle);
                if (names.Contains(text) && !hits.Contains(text))
                {
                    hits.Add(text);
                }

                handle = reader.GetNextHandle(handle);
            }
        }
        catch (BadImageFormatException)
        {
            // Metadata that cannot be read is not evidence either way.
        }

        return hits;
    }
}
