using System.Runtime.CompilerServices;
using Palisade.Host.Linux.Authority;
using Palisade.Interop;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// Reads guest memory through the process's /proc/PID/mem (see <see cref="SupervisedProcess"/>). A read that meets an unmapped page stops there, so a string ending just before one is still read
/// and a fault is reported as EFAULT exactly where Linux would report it. A read through the process's memory that
/// returns nothing means its address space is gone (it ended, or a reused thread id is not its thread): -ESRCH.
/// </summary>
/// <remarks>
/// /proc/PID/mem reads pages the guest mapped without read permission (PROT_NONE) as the kernel's debugger access
/// does, where the guest's own system call would fail with EFAULT: a path or address in such a page is read instead of
/// refused. It is the guest's own memory, so this reveals nothing to it.
/// </remarks>
internal static unsafe class GuestMemory
{
    private const int PageSize = 4096;

    /// <summary>The highest user-space address on x86-64 (with five-level paging).</summary>
    private const ulong UserSpaceEnd = 1UL << 56;

    /// <summary>
    /// Reads up to <paramref name="length"/> bytes of <paramref name="process"/>'s memory; the count read (short at a
    /// fault), -EFAULT when nothing at <paramref name="address"/> is mapped, or -ESRCH when the address space is gone.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Read(SupervisedProcess process, ulong address, Span<byte> destination, int length)
    {
        if (length == 0)
        {
            return 0;
        }

        if (address == 0 || address >= UserSpaceEnd)
        {
            return -Errno.EFAULT;
        }

        bool added = false;
        try
        {
            process.Memory.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
            // The process's end was seen (and its memory handle closed) while a call of one of its threads was in
            // flight: its address space is gone.
            return -Errno.ESRCH;
        }

        try
        {
            fixed (byte* d = destination)
            {
                nint got = Libc.PRead((int)process.Memory.DangerousGetHandle(), d, (nuint)length, (long)address);
                if (got < 0)
                {
                    int error = Libc.LastError;
                    return -(error is Errno.EIO or Errno.EINVAL ? Errno.EFAULT : error);
                }

                return got == 0 ? -Errno.ESRCH : (int)got;
            }
        }
        finally
        {
            if (added)
            {
                process.Memory.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="source"/> to the memory of the process of thread <paramref name="threadId"/> at
    /// <paramref name="address"/>, as a system call's result is copied out (process_vm_writev honours the page
    /// protections the guest's own call would meet): 0, -EFAULT for an address the guest could not write, or -errno.
    /// The caller checks that the guest still waits for its call first, so the thread is the one that asked.
    /// </summary>
    public static int Write(int threadId, ulong address, ReadOnlySpan<byte> source)
    {
        if (address == 0 || address >= UserSpaceEnd)
        {
            return -Errno.EFAULT;
        }

        fixed (byte* s = source)
        {
            var local = new IoVec { Base = s, Length = (nuint)source.Length };
            var remote = new IoVec { Base = (void*)address, Length = (nuint)source.Length };
            nint written = Libc.ProcessVmWritev(threadId, &local, 1, &remote, 1, 0);
            if (written < 0)
            {
                return -Libc.LastError;
            }

            return written == source.Length ? 0 : -Errno.EFAULT;
        }
    }

    /// <summary>
    /// Reads a NUL-terminated path from <paramref name="process"/> into <paramref name="destination"/> (at least
    /// PATH_MAX + 1 bytes). Returns its length without the NUL, -EFAULT for a bad pointer, -ENAMETOOLONG past
    /// PATH_MAX, -ESRCH when the address space is gone.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int ReadPath(SupervisedProcess process, ulong address, Span<byte> destination)
    {
        int first = (int)Math.Min((ulong)Scratch.PathMax, PageSize - (address % PageSize));
        int got = Read(process, address, destination, first);
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
            int more = Read(process, address + (ulong)first, destination[first..], Scratch.PathMax - first);
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
