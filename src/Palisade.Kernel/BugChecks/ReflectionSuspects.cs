using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using System.Runtime.InteropServices;

namespace Palisade.Kernel.BugChecks;

/// <summary>
/// Names a suspect when the guard's own state was tampered with by reflection, which leaves no foreign code
/// address to follow. A driver that reaches into the kernel by reflection has to spell the kernel's private member
/// names as strings; this reads the user-string heap of every loaded assembly outside the runtime and the kernel
/// and ranks them by how many of those private names they hold.
/// </summary>
internal static class ReflectionSuspects
{
    internal static (string Assembly, IReadOnlyList<string> Names)? Find(IEnumerable<Type> internals)
    {
        var privateNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (Type type in internals)
        {
            foreach (FieldInfo field in type.GetFields(BindingFlags.Instance | BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (field.Name.StartsWith('_'))
                {
                    privateNames.Add(field.Name);
                }
            }
        }

        Assembly kernel = typeof(ReflectionSuspects).Assembly;
        string runtimeDirectory = RuntimeEnvironment.GetRuntimeDirectory();
        (string Assembly, IReadOnlyList<string> Names)? best = null;
        foreach (Assembly assembly in AppDomain.CurrentDomain.GetAssemblies())
        {
            if (assembly == kernel || assembly.IsDynamic || assembly.Location.Length == 0
                || assembly.Location.StartsWith(runtimeDirectory, StringComparison.Ordinal))
            {
                continue;
            }

            List<string> hits = NamesIn(assembly.Location, privateNames);
            if (hits.Count > 0 && (best is null || hits.Count > best.Value.Names.Count))
            {
                best = (assembly.GetName().Name ?? assembly.Location, hits);
            }
        }

        return best;
    }

    private static List<string> NamesIn(string path, HashSet<string> privateNames)
    {
        var hits = new List<string>();
        try
        {
            using var stream = File.OpenRead(path);
            using var pe = new PEReader(stream);
            if (!pe.HasMetadata)
            {
                return hits;
            }

            MetadataReader reader = pe.GetMetadataReader();
            if (reader.GetHeapSize(HeapIndex.UserString) <= 1)
            {
                return hits;
            }

            UserStringHandle handle = MetadataTokens.UserStringHandle(1);
            while (!handle.IsNil)
            {
                string text = reader.GetUserString(handle);
                if (privateNames.Contains(text) && !hits.Contains(text))
                {
                    hits.Add(text);
                }

                handle = reader.GetNextHandle(handle);
            }
        }
        catch (Exception e) when (e is IOException or BadImageFormatException or UnauthorizedAccessException)
        {
            // An assembly that cannot be read is not evidence either way.
        }

        return hits;
    }
}
