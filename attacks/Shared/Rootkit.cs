// The toolkit every attack in attacks/ shares, linked into each project: what a rootkit driver does with nothing
// but the driver API, reflection and unsafe code. It finds kernel internals by name, follows the runtime's stubs
// to native code, and writes code and data pages after mprotect, the way MonoMod/Harmony detours do.
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Palisade.Attacks;

internal static unsafe partial class Rootkit
{
    private const int ProtRead = 1;
    private const int ProtWrite = 2;
    private const int ProtExec = 4;

    /// <summary>Finds a kernel type by its full name among the loaded assemblies, as a rootkit resolves symbols.</summary>
    internal static Type KernelType(string fullName)
    {
        foreach (Assembly assembly in AppDomain.CurrentDomain.GetAssemblies())
        {
            if (assembly.GetName().Name == "Palisade.Kernel" && assembly.GetType(fullName) is { } type)
            {
                return type;
            }
        }

        throw new InvalidOperationException($"Kernel type {fullName} not found: is the kernel loaded?");
    }

    internal static MethodInfo KernelMethod(string typeName, string methodName, params Type[] genericArguments)
    {
        const BindingFlags any = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static;
        MethodInfo method = KernelType(typeName).GetMethod(methodName, any)
            ?? throw new InvalidOperationException($"{typeName}.{methodName} not found.");
        return genericArguments.Length == 0 ? method : method.MakeGenericMethod(genericArguments);
    }

    internal static nint StubOf(MethodBase method)
    {
        RuntimeHelpers.PrepareMethod(method.MethodHandle);
        return method.MethodHandle.GetFunctionPointer();
    }

    /// <summary>The data cell of a FixupPrecode stub (jmp [rip+rel32]).</summary>
    internal static nint CellOf(MethodBase method)
    {
        nint stub = StubOf(method);
        byte* p = (byte*)stub;
        if (p[0] != 0xFF || p[1] != 0x25)
        {
            throw new InvalidOperationException($"Unexpected stub shape at 0x{stub:X}.");
        }

        return stub + 6 + *(int*)(p + 2);
    }

    /// <summary>
    /// The compiled body a method's stub leads to. A method of a collectible assembly (a driver's own code) has no
    /// precode once compiled: its entry point is the body itself.
    /// </summary>
    internal static nint BodyOf(MethodBase method)
    {
        nint entry = StubOf(method);
        byte* p = (byte*)entry;
        return p[0] == 0xFF && p[1] == 0x25 ? *(nint*)(entry + 6 + *(int*)(p + 2)) : entry;
    }

    /// <summary>Overwrites memory whatever its protection, restores the protection, returns the old bytes.</summary>
    internal static byte[] Write(nint address, ReadOnlySpan<byte> bytes)
    {
        byte[] original = new ReadOnlySpan<byte>((void*)address, bytes.Length).ToArray();
        long pageSize = Environment.SystemPageSize;
        nint page = (nint)((long)address & ~(pageSize - 1));
        nuint length = (nuint)((long)address + bytes.Length - (long)page);
        int restore = ProtectionOf(address);
        Check(Mprotect(page, length, ProtRead | ProtWrite | ProtExec), "mprotect(RWX)");
        if (bytes.Length == 8 && (address & 7) == 0)
        {
            // One aligned store: a thread running this code never sees a torn instruction.
            Volatile.Write(ref *(long*)address, BitConverter.ToInt64(bytes));
        }
        else
        {
            bytes.CopyTo(new Span<byte>((void*)address, bytes.Length));
        }

        Check(Mprotect(page, length, restore), "mprotect(restore)");
        return original;
    }

    /// <summary>Writes a pointer-sized value whatever the page's protection.</summary>
    internal static nint WritePointer(nint address, nint value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BitConverter.TryWriteBytes(bytes, (long)value);
        byte[] old = Write(address, bytes);
        return (nint)BitConverter.ToInt64(old);
    }

    /// <summary>Walks private fields from <paramref name="root"/> until it meets an object of the named type.</summary>
    internal static object FindObject(object root, string typeFullName)
    {
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var queue = new Queue<(object Value, int Depth)>();
        queue.Enqueue((root, 0));
        while (queue.Count > 0)
        {
            (object value, int depth) = queue.Dequeue();
            if (!seen.Add(value))
            {
                continue;
            }

            Type type = value.GetType();
            if (type.FullName == typeFullName)
            {
                return value;
            }

            if (depth >= 6 || type.IsPrimitive || value is string || value is Type || value is MemberInfo)
            {
                continue;
            }

            if (value is Array array && !type.GetElementType()!.IsValueType)
            {
                foreach (object? item in array)
                {
                    if (item is not null)
                    {
                        queue.Enqueue((item, depth + 1));
                    }
                }

                continue;
            }

            for (Type? t = type; t is not null; t = t.BaseType)
            {
                foreach (FieldInfo field in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                {
                    if (!field.FieldType.IsValueType && field.GetValue(value) is { } child)
                    {
                        queue.Enqueue((child, depth + 1));
                    }
                }
            }
        }

        throw new InvalidOperationException($"No {typeFullName} reachable from {root.GetType().FullName}.");
    }

    internal static object? GetField(object target, string name) => FieldOf(target.GetType(), name).GetValue(target);

    internal static void SetField(object target, string name, object? value) => FieldOf(target.GetType(), name).SetValue(target, value);

    internal static object? GetPropertyOrNull(object target, string name) =>
        target.GetType().GetProperty(name, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)?.GetValue(target);

    internal static object? GetProperty(object target, string name) =>
        target.GetType().GetProperty(name, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)?.GetValue(target)
        ?? throw new MissingMemberException(target.GetType().FullName, name);

    private static FieldInfo FieldOf(Type type, string name)
    {
        for (Type? t = type; t is not null; t = t.BaseType)
        {
            if (t.GetField(name, BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic) is { } field)
            {
                return field;
            }
        }

        throw new MissingFieldException(type.FullName, name);
    }

    private static int ProtectionOf(nint address)
    {
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            ulong start = ulong.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            ulong end = ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if ((ulong)address >= start && (ulong)address < end)
            {
                ReadOnlySpan<char> perms = line.AsSpan(space + 1, 4);
                return (perms[0] == 'r' ? ProtRead : 0) | (perms[1] == 'w' ? ProtWrite : 0) | (perms[2] == 'x' ? ProtExec : 0);
            }
        }

        throw new InvalidOperationException($"0x{address:X} is not mapped.");
    }

    private static void Check(int result, string what)
    {
        if (result != 0)
        {
            throw new InvalidOperationException($"{what} failed: errno {Marshal.GetLastPInvokeError()}.");
        }
    }

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int Mprotect(nint address, nuint length, int protection);
}
