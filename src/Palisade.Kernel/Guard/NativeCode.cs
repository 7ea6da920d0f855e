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

    /// <summary>
    /// How many bytes of native code without a runtime code header (the JIT's compileMethod) the guard hashes, and the
    /// least it hashes of any body: covers every detour form (5, 6, 12, 14 bytes), even one that overruns a tiny method.
    /// </summary>
    internal const int BodyPrefixLength = 32;

    /// <summary>The largest extent the guard accepts for one method's code (a sanity bound on the header it reads).</summary>
    internal const int MaxBodyLength = 1 << 20;

    // CoreCLR x64 (USE_INDIRECT_CODEHEADER, FEATURE_EH_FUNCLETS, no FEATURE_GDBJIT): the pointer just before a JIT-compiled
    // body is its RealCodeHeader, which holds phdrDebugInfo, phdrJitEHInfo, phdrJitGCInfo, phdrMDesc, then nUnwindInfos
    // and that many RUNTIME_FUNCTION entries (BeginAddress, EndAddress, UnwindData; offsets from the code heap's base):
    // the main body first, then its funclets, laid out after it in one allocation.
    private const int HeaderMethodDescOffset = 24;
    private const int HeaderUnwindCountOffset = 32;
    private const int HeaderUnwindInfosOffset = 36;
    private const int RuntimeFunctionSize = 12;

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

        return new MethodCodeLocation(stub, cell, body, BodyLength(body, handle.Value, method));
    }

    /// <summary>
    /// The length of a compiled method's native code, funclets included, from the runtime's own code header: the extent
    /// of its unwind entries. The header names its method, which is checked, so a wrong layout (another runtime
    /// version) is refused rather than trusted.
    /// </summary>
    /// <exception cref="InvalidOperationException">The header does not describe this method's body.</exception>
    internal static int BodyLength(nint body, nint methodDesc, MethodBase method)
    {
        nint header = ReadPointer(body - sizeof(nint));
        uint count = header == 0 ? 0 : *(uint*)(header + HeaderUnwindCountOffset);
        if (header == 0 || ReadPointer(header + HeaderMethodDescOffset) != methodDesc || count is 0 or > 1024)
        {
            throw new InvalidOperationException(
                $"The code header of {method.DeclaringType?.FullName}.{method.Name} at 0x{body:X} does not name the method; the guard cannot find the end of its body.");
        }

        uint* first = (uint*)(header + HeaderUnwindInfosOffset);
        uint begin = first[0];
        uint end = begin;
        for (uint i = 0; i < count; i++)
        {
            uint* entry = (uint*)((byte*)first + (i * RuntimeFunctionSize));
            if (entry[0] < begin || entry[1] <= entry[0])
            {
                throw new InvalidOperationException($"The unwind entries of {method.DeclaringType?.FullName}.{method.Name} are not in the expected layout.");
            }

            end = Math.Max(end, entry[1]);
        }

        long length = (long)end - begin;
        if (length > MaxBodyLength)
        {
            throw new InvalidOperationException($"{method.DeclaringType?.FullName}.{method.Name} spans {length} bytes, more than the guard accepts.");
        }

        return Math.Max((int)length, BodyPrefixLength);
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

/// <summary>
/// Where a protected method's native code lives: the stub callers enter, its data cell, and the body with its length
/// (funclets included; at least <see cref="NativeCode.BodyPrefixLength"/>).
/// </summary>
internal readonly record struct MethodCodeLocation(nint Stub, nint Cell, nint Body, int BodyLength);
