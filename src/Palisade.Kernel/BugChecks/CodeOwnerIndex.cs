using System.Reflection;
using System.Runtime.InteropServices;
using Palisade.Kernel.Guard;

namespace Palisade.Kernel.BugChecks;

/// <summary>
/// Answers "which loaded method owns this code address?" after a detection. It walks the methods of every loaded
/// assembly that is not part of the runtime, resolving each method's stub and, when compiled, its body. Slow and
/// allocating by design: it runs once, during a bug check.
/// </summary>
internal sealed class CodeOwnerIndex
{
    // A jump into the middle of a body is attributed to the nearest body start below it, up to this distance.
    private const ulong MaxBodyLength = 64 * 1024;

    private static readonly Assembly KernelAssembly = typeof(CodeOwnerIndex).Assembly;

    private readonly List<(ulong Address, MethodBase Method)> _entries = [];

    internal static CodeOwnerIndex Build()
    {
        var index = new CodeOwnerIndex();
        string runtimeDirectory = RuntimeEnvironment.GetRuntimeDirectory();
        foreach (Assembly assembly in AppDomain.CurrentDomain.GetAssemblies())
        {
            if (assembly.IsDynamic || IsRuntimeAssembly(assembly, runtimeDirectory))
            {
                continue;
            }

            foreach (Type type in TypesOf(assembly))
            {
                if (type.ContainsGenericParameters)
                {
                    continue;
                }

                const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
                foreach (MethodInfo method in type.GetMethods(all))
                {
                    index.Add(method);
                }

                foreach (ConstructorInfo constructor in type.GetConstructors(all))
                {
                    index.Add(constructor);
                }
            }
        }

        index._entries.Sort((a, b) => a.Address.CompareTo(b.Address));
        return index;
    }

    /// <summary>The method whose stub or body starts at <paramref name="address"/>, or whose body contains it.</summary>
    internal MethodBase? Find(ulong address)
    {
        MethodBase? nearest = null;
        MethodBase? exact = null;
        ulong nearestStart = 0;
        foreach ((ulong start, MethodBase method) in _entries)
        {
            if (start == address)
            {
                // A swapped stub cell makes the victim's stub lead to the attacker's body too: the body's own
                // method, outside the kernel, is the owner.
                if (exact is null || exact.DeclaringType?.Assembly == KernelAssembly)
                {
                    exact = method;
                }

                continue;
            }

            if (start < address && address - start < MaxBodyLength && start > nearestStart)
            {
                nearestStart = start;
                nearest = method;
            }
        }

        return exact ?? nearest;
    }

    private void Add(MethodBase method)
    {
        if (method.IsAbstract || method.ContainsGenericParameters)
        {
            return;
        }

        try
        {
            nint stub = method.MethodHandle.GetFunctionPointer();
            _entries.Add(((ulong)stub, method));
            nint body = NativeCode.FollowStub(stub, out _);
            if (body != 0 && body != stub)
            {
                _entries.Add(((ulong)body, method));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or ArgumentException or BadImageFormatException)
        {
            // Some methods (runtime-implemented, pinvoke without marshalling data) have no stub to compare with.
        }
    }

    private static bool IsRuntimeAssembly(Assembly assembly, string runtimeDirectory)
    {
        string location = assembly.Location;
        // Assemblies loaded from bytes have no location; they are exactly the ones a loader brings in, so keep them.
        return location.Length != 0 && location.StartsWith(runtimeDirectory, StringComparison.Ordinal);
    }

    private static IEnumerable<Type> TypesOf(Assembly assembly)
    {
        try
        {
            return assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException e)
        {
            return e.Types.OfType<Type>();
        }
    }
}
