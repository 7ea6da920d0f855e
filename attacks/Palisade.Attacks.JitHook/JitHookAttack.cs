using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Palisade.Attacks.JitHook;

/// <summary>
/// Replaces the compileMethod slot of the JIT's ICorJitCompiler vtable with a forwarder in this assembly, the hook
/// patching libraries install so that every method compiled afterwards passes through them. The forwarder calls
/// the original, so the process keeps working; it only counts. Dispose puts the original back.
/// </summary>
public static unsafe class JitHookAttack
{
    private static nint s_original;
    private static int s_armed;
    private static long s_compilations;

    /// <summary>How many compilations passed through the hook.</summary>
    public static long Compilations => Interlocked.Read(ref s_compilations);

    /// <summary>Installs the hook; disposing the result puts the original back.</summary>
    internal static IDisposable Install()
    {
        nint library = NativeLibrary.Load(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "libclrjit.so"));
        nint jit = ((delegate* unmanaged<nint>)NativeLibrary.GetExport(library, "getJit"))();
        nint vtable = *(nint*)jit;
        s_original = *(nint*)vtable;

        // The hook must be compiled before it is installed: compiling it through itself would recurse forever.
        delegate* unmanaged<nint, nint, nint, uint, nint, nint, int> hook = &CompileMethod;
        hook(0, 0, 0, 0, 0, 0);
        Volatile.Write(ref s_armed, 1);
        Rootkit.WritePointer(vtable, (nint)hook);
        return new Undo(() =>
        {
            Rootkit.WritePointer(vtable, s_original);
            Volatile.Write(ref s_armed, 0);
        });
    }

    [UnmanagedCallersOnly]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int CompileMethod(nint self, nint jitInfo, nint methodInfo, uint flags, nint entry, nint size)
    {
        if (Volatile.Read(ref s_armed) == 0)
        {
            return 0;
        }

        Interlocked.Increment(ref s_compilations);
        return ((delegate* unmanaged<nint, nint, nint, uint, nint, nint, int>)s_original)(self, jitInfo, methodInfo, flags, entry, size);
    }
}
