using System.Runtime.CompilerServices;

namespace Palisade.Attacks.InlineDetour;

/// <summary>
/// What the detours redirect to: a stand-in for the kernel's system call recorder that drops every call, so the
/// rootkit's own system calls never reach a crash dump. Same calling convention as the instance method it replaces
/// (the ring arrives as the first argument).
/// </summary>
public static class SyscallHiding
{
    private static long s_swallowed;

    /// <summary>How many system calls the hook has hidden.</summary>
    public static long Swallowed => Interlocked.Read(ref s_swallowed);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void SwallowRecord(object ring, int pid, int tid, int number, long arg0, long arg1, long arg2, long result) =>
        Interlocked.Increment(ref s_swallowed);

    internal static System.Reflection.MethodInfo Target =>
        Rootkit.KernelMethod("Palisade.Kernel.BugChecks.SyscallRing", "Record");

    internal static System.Reflection.MethodInfo Replacement =>
        typeof(SyscallHiding).GetMethod(nameof(SwallowRecord), System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)!;
}
