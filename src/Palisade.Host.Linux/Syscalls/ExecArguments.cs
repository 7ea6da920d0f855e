using System.Buffers;
using System.Buffers.Binary;
using Palisade.Interop;
using Palisade.Host.Linux.Authority;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// The argv and envp of an exec, read from the guest's memory when it asks for the exec: the pointer vector once, each
/// string once (never a pointer read twice). Linux copies them again when it performs the exec, so what is read here is
/// what the caller passed at the call. The exec path may allocate (it is rare); nothing here runs for any other call.
/// </summary>
internal static class ExecArguments
{
    /// <summary>
    /// The most argv and envp may take together for Linux to perform an exec: bprm_stack_limits caps it at
    /// _STK_LIM / 4 * 3 (6 MiB), counting each string with its NUL and its pointer. Reading up to it reads every string
    /// of any exec Linux performs; an exec over it fails with E2BIG in Linux, and its lists hold what fits.
    /// </summary>
    public const int LinuxLimit = 6 * 1024 * 1024;

    /// <summary>MAX_ARG_STRLEN: the longest one string may be, NUL included (a longer one fails the exec with E2BIG).</summary>
    public const int MaxStringLength = 32 * 4096;

    private const int PageSize = 4096;
    private const int PointersPerRead = 512;

    /// <summary>
    /// Reads the NULL-terminated string vector at <paramref name="vector"/> (argv or envp). <paramref name="budget"/> is
    /// what is left of <see cref="LinuxLimit"/>, shared by argv and envp; reading stops at the budget, at a string longer
    /// than Linux takes, or at memory that cannot be read (Linux then fails the exec with EFAULT). Strings are decoded as
    /// UTF-8 (an invalid sequence becomes U+FFFD). Returns an empty list for a null vector.
    /// </summary>
    public static List<string> Read(SupervisedProcess process, ulong vector, ref int budget)
    {
        var strings = new List<string>();
        if (vector == 0)
        {
            return strings;
        }

        byte[] text = ArrayPool<byte>.Shared.Rent(MaxStringLength);
        byte[] pointers = ArrayPool<byte>.Shared.Rent(PointersPerRead * sizeof(ulong));
        try
        {
            for (ulong at = vector; budget > 0; )
            {
                // A read of the vector stops at an unmapped page: take the whole pointers it got, then read on from there.
                int got = GuestMemory.Read(process, at, pointers, PointersPerRead * sizeof(ulong));
                if (got < sizeof(ulong))
                {
                    return strings;
                }

                int whole = got / sizeof(ulong) * sizeof(ulong);
                for (int i = 0; i < whole; i += sizeof(ulong))
                {
                    ulong address = BinaryPrimitives.ReadUInt64LittleEndian(pointers.AsSpan(i, sizeof(ulong)));
                    if (address == 0)
                    {
                        return strings;
                    }

                    int length = ReadString(process, address, text);
                    if (length < 0 || (budget -= length + 1 + sizeof(ulong)) < 0)
                    {
                        return strings;
                    }

                    strings.Add(System.Text.Encoding.UTF8.GetString(text, 0, length));
                }

                at += (ulong)whole;
            }

            return strings;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(pointers);
            ArrayPool<byte>.Shared.Return(text);
        }
    }

    /// <summary>
    /// Reads one NUL-terminated string into <paramref name="destination"/> (at least <see cref="MaxStringLength"/>
    /// bytes), a page at a time so that a string ending just before an unmapped page is read; its length without the
    /// NUL, or -1 when it cannot be read or is longer than Linux takes.
    /// </summary>
    private static int ReadString(SupervisedProcess process, ulong address, byte[] destination)
    {
        int used = 0;
        while (used < MaxStringLength)
        {
            int chunk = (int)Math.Min((ulong)(MaxStringLength - used), PageSize - ((address + (ulong)used) % PageSize));
            int got = GuestMemory.Read(process, address + (ulong)used, destination.AsSpan(used), chunk);
            if (got <= 0)
            {
                return -1;
            }

            int nul = destination.AsSpan(used, got).IndexOf((byte)0);
            if (nul >= 0)
            {
                return used + nul;
            }

            used += got;
        }

        return -1;
    }
}
