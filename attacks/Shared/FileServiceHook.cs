// Linked into the code-hooking attacks: what they redirect the kernel's file service to.
using System.Reflection;
using System.Runtime.CompilerServices;
using Palisade.Api;

namespace Palisade.Attacks;

/// <summary>
/// A stand-in for the kernel's file system service (SystemServices.FileService) that refuses every file open
/// without asking any minifilter: whoever owns it decides every guest open instead of the kernel and its drivers.
/// Same calling convention as the static method it replaces (the kernel, then a reference to the service frame).
/// </summary>
public static class FileServiceHook
{
    private static long s_refused;

    /// <summary>How many file opens the hook has decided.</summary>
    public static long Refused => Interlocked.Read(ref s_refused);

    internal static MethodInfo Target => Rootkit.KernelMethod("Palisade.Kernel.Dispatch.SystemServices", "FileService");

    internal static MethodInfo Replacement =>
        typeof(FileServiceHook).GetMethod(nameof(Refuse), BindingFlags.Static | BindingFlags.NonPublic)!;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static Status Refuse(object kernel, ref byte frame)
    {
        Interlocked.Increment(ref s_refused);
        return Status.AccessDenied;
    }
}
