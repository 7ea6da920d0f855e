using System.Runtime.CompilerServices;
using Palisade.Interop;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// Reads guest memory with process_vm_readv. A read is split at page boundaries so that a string
/// ending just before an unmapped page is still read, and a fault is reported as EFAULT exactly where
/// Linux would report it.
/// </summary>
internal static unsafe class GuestMemory
{
    private const int PageSize = 4096;

    /// <summary>Reads up to <paramref name="length"/> bytes; returns the count read (may be short at a fault) or -errno.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Read(int tid, ulong address, Span<byte> destination, int length)
    {
        if (length == 0)
        {
            return 0;
        }

        if (address == 0)
        {
            return -Errno.EFAULT;
        }

        int firstChunk = (int)Math.Min((ulong)length, PageSize - (address % PageSize));
        fixed (byte* local = destination)
        {
            var localVec = new IoVec { Base = local, Length = (nuint)length };
            IoVec* remote = stackalloc IoVec[3];
            int count = 0;
            int offset = 0;
            while (offset < length && count < 3)
            {
                int chunk = count == 0 ? firstChunk : Math.Min(PageSize, length - offset);
                remote[count].Base = (void*)(address + (ulong)offset);
                remote[count].Length = (nuint)chunk;
                offset += chunk;
                count++;
            }

            localVec.Length = (nuint)offset;
            nint got = Libc.ProcessVmReadv(tid, &localVec, 1, remote, (ulong)count, 0);
            if (got < 0)
            {
                int error = Libc.LastError;
                return -(error == Errno.ESRCH ? Errno.ESRCH : Errno.EFAULT);
            }

            return (int)got;
        }
    }

    /// <summary>
    /// Reads a NUL-terminated path into <paramref name="destination"/> (at least PATH_MAX + 1 bytes).
    /// Returns its length without the NUL, -EFAULT for a bad pointer, -ENAMETOOLONG past PATH_MAX.
    /// </summary>
    /// <remarks>
    /// Most paths end well before their page does: the rest of the first page is read first, and the following
    /// pages only when it holds no NUL, so that a typical path costs Linux one pinned page instead of two.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int ReadPath(int tid, ulong address, Span<byte> destination)
    {
        int first = (int)Math.Min((ulong)Scratch.PathMax, PageSize - (address % PageSize));
        int got = Read(tid, address, destination, first);
        if (got < 0)
        {
            return got;
        }

        int nul = destination[..got].IndexOf((byte)0);
        if (nul >= 0)
        {
            return nul;
        }

        if (got < first)
        {
            return -Errno.EFAULT;
        }

        if (first < Scratch.PathMax)
        {
            int more = Read(tid, address + (ulong)first, destination[first..], Scratch.PathMax - first);
            if (more < 0)
            {
                return more == -Errno.ESRCH ? more : -Errno.EFAULT;
            }

            nul = destination.Slice(first, more).IndexOf((byte)0);
            if (nul >= 0)
            {
                return first + nul;
            }

            got = first + more;
        }

        return got == Scratch.PathMax ? -Errno.ENAMETOOLONG : -Errno.EFAULT;
    }
}
