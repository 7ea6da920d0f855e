using System.Runtime.InteropServices;

namespace Palisade.Guard.Tests;

/// <summary>Writes machine code the way a detour library does (mprotect RWX, write, restore), for tests that patch code.</summary>
internal static unsafe partial class CodeWriter
{
    private const int ProtRead = 1;
    private const int ProtWrite = 2;
    private const int ProtExec = 4;

    /// <summary>Overwrites code at <paramref name="address"/>; returns the bytes it replaced.</summary>
    internal static byte[] Write(nint address, ReadOnlySpan<byte> bytes)
    {
        byte[] original = new ReadOnlySpan<byte>((void*)address, bytes.Length).ToArray();
        long pageSize = Environment.SystemPageSize;
        nint page = (nint)((long)address & ~(pageSize - 1));
        nuint length = (nuint)((long)address + bytes.Length - (long)page);
        Assert.Equal(0, Mprotect(page, length, ProtRead | ProtWrite | ProtExec));
        bytes.CopyTo(new Span<byte>((void*)address, bytes.Length));
        Assert.Equal(0, Mprotect(page, length, ProtRead | ProtExec));
        return original;
    }

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int Mprotect(nint address, nuint length, int protection);
}
