using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Palisade.Kernel.Guard;

/// <summary>
/// The guard's only raw-memory code: reading bytes and pointers at native addresses, walking the runtime's
/// FixupPrecode to the body a method's stub jumps to, and finding the JIT's compiler object.
/// Every address read here was produced by the runtime itself (a stub, its cell, a body, an export) or lies inside
/// a range the kernel allocated, so a read cannot fault unless the memory was unmapped by tampering.
/// </summary>
internal static unsafe class NativeCode
{
    /// <summary>Length of the x64 FixupPrecode: jmp [cell]; mov r10, [MethodDesc]; jmp [fixup].</summary>
    internal const int FixupPrecodeLength = 19;

    /// <summary>How many bytes of a body the guard hashes; covers every detour form (5, 6, 12, 14 bytes).</summary>
    internal const int BodyPrefixLength = 32;

    internal static void Copy(nint address, Span<byte> destination) =>
        new ReadOnlySpan<byte>((void*)address, destination.Length).CopyTo(destination);

    internal static ReadOnlySpan<byte> View(nint address, int length) => new((void*)address, length);

    internal static nint ReadPointer(nint address) => Volatile.Read(ref *(nint*)address);

    /// <summary>
    /// Resolves the native code of a method: compiles it, takes its stub, checks the stub is a FixupPrecode and
    /// follows its data cell to the body. Throws when the method is not in a shape the guard can protect.
    /// </summary>
    internal static MethodCodeLocation Locate(MethodBase method)
    {
        ArgumentNullException.ThrowIfNull(method);
        RuntimeMethodHandle handle = method.MethodHandle;
        if (method.DeclaringType is { IsGenericType: true } type)
        {
            RuntimeHelpers.PrepareMethod(handle, Array.ConvertAll(type.GetGenericArguments(), t => t.TypeHandle));
        }
        else
        {
            RuntimeHelpers.PrepareMethod(handle);
        }

        nint stub = handle.GetFunctionPointer();
        byte* p = (byte*)stub;
        bool fixupPrecode = p[0] == 0xFF && p[1] == 0x25
            && p[6] == 0x4C && p[7] == 0x8B && p[8] == 0x15
            && p[13] == 0xFF && p[14] == 0x25;
        if (!fixupPrecode)
        {
            throw new InvalidOperationException(
                $"The stub of {method.DeclaringType?.FullName}.{method.Name} at 0x{stub:X} is not a FixupPrecode; the guard cannot locate its body.");
        }

        nint cell = stub + 6 + *(int*)(p + 2);
        nint body = ReadPointer(cell);
        if (body == stub + 6)
        {
            throw new InvalidOperationException(
                $"{method.DeclaringType?.FullName}.{method.Name} has no compiled body after PrepareMethod.");
        }

        return new MethodCodeLocation(stub, cell, body);
    }

    /// <summary>Follows a stub to its current body without compiling; returns the stub itself when it is not a FixupPrecode.</summary>
    internal static nint FollowStub(nint stub, out nint cell)
    {
        cell = 0;
        byte* p = (byte*)stub;
        if (p[0] != 0xFF || p[1] != 0x25 || p[6] != 0x4C || p[7] != 0x8B || p[8] != 0x15)
        {
            return stub;
        }

        cell = stub + 6 + *(int*)(p + 2);
        nint body = ReadPointer(cell);
        return body == stub + 6 ? 0 : body;
    }

    /// <summary>Returns the JIT's ICorJitCompiler object (libclrjit.so's getJit export).</summary>
    internal static nint GetJitCompiler()
    {
        string path = Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "libclrjit.so");
        nint library = NativeLibrary.Load(path);
        nint getJit = NativeLibrary.GetExport(library, "getJit");
        nint jit = ((delegate* unmanaged<nint>)getJit)();
        if (jit == 0)
        {
            throw new InvalidOperationException("libclrjit.so's getJit returned null.");
        }

        return jit;
    }
}

/// <summary>Where a protected method's native code lives: the stub callers enter, its data cell, and the body.</summary>
internal readonly record struct MethodCodeLocation(nint Stub, nint Cell, nint Body);
