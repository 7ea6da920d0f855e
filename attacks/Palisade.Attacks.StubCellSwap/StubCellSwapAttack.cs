using System.Runtime.CompilerServices;

namespace Palisade.Attacks.StubCellSwap;

/// <summary>
/// Swaps the data cell of the kernel system call recorder's stub for this assembly's replacement body, the cheap
/// hook that catches every call made through a delegate, reflection or a function pointer. Dispose swaps it back.
/// </summary>
public sealed class StubCellSwapAttack : IDisposable
{
    private static long s_swallowed;
    private nint _cell;
    private nint _original;

    /// <summary>How many system calls the hook has hidden.</summary>
    public static long Swallowed => Interlocked.Read(ref s_swallowed);

    /// <summary>Installs the hook.</summary>
    public void Install()
    {
        var target = Rootkit.KernelMethod("Palisade.Kernel.BugChecks.SyscallRing", "Record");
        var replacement = typeof(StubCellSwapAttack).GetMethod(nameof(SwallowRecord), System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)!;
        _cell = Rootkit.CellOf(target);
        _original = Rootkit.WritePointer(_cell, Rootkit.BodyOf(replacement));
    }

    /// <summary>Puts the original body back in the cell.</summary>
    public void Dispose()
    {
        if (_cell != 0)
        {
            Rootkit.WritePointer(_cell, _original);
            _cell = 0;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void SwallowRecord(object ring, int pid, int tid, int number, long arg0, long arg1, long arg2, long result) =>
        Interlocked.Increment(ref s_swallowed);
}
