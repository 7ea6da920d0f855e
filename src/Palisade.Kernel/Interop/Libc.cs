using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Palisade.Api;

namespace Palisade.Kernel.Interop;

/// <summary>The few libc calls the kernel itself needs (file identity). Each call is checked; errno is returned.</summary>
internal static unsafe partial class Libc
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct Stat
    {
        public ulong Dev;
        public ulong Ino;
        public ulong Nlink;
        public uint Mode;
        public uint Uid;
        public uint Gid;
        private readonly int _pad0;
        public ulong Rdev;
        public long Size;
        public long BlkSize;
        public long Blocks;
        public long Atime, AtimeNsec, Mtime, MtimeNsec, Ctime, CtimeNsec;
        private readonly long _reserved0, _reserved1, _reserved2;
    }

    /// <summary>EBADF: the descriptor is not open (for reading).</summary>
    public const int EBADF = 9;

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static partial nint PReadRaw(int fd, byte* buffer, nuint count, long offset);

    /// <summary>Reads from <paramref name="fd"/> at <paramref name="offset"/> without moving its position; errno on failure.</summary>
    public static int PRead(int fd, Span<byte> buffer, long offset, out int bytesRead)
    {
        fixed (byte* b = buffer)
        {
            nint n = PReadRaw(fd, b, (nuint)buffer.Length, offset);
            if (n < 0)
            {
                bytesRead = 0;
                return Marshal.GetLastPInvokeError();
            }

            bytesRead = (int)n;
            return 0;
        }
    }

    [LibraryImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static partial int FStatRaw(int fd, Stat* buf);

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatRaw(string path, Stat* buf);

    [LibraryImport("libc", EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LStatRaw(string path, Stat* buf);

    /// <summary>Whether a path is a regular file, not following a final symbolic link; errno on failure.</summary>
    /// <remarks>.NET reports FIFOs, sockets and devices as ordinary files; reading a FIFO blocks forever.</remarks>
    public static int IsRegularFile(string path, out bool isRegular)
    {
        Stat st;
        if (LStatRaw(path, &st) != 0)
        {
            isRegular = false;
            return Marshal.GetLastPInvokeError();
        }

        isRegular = (st.Mode & 0xF000) == 0x8000;
        return 0;
    }

    /// <summary>The identity of an open file; errno on failure.</summary>
    public static int FileIdentityOf(SafeFileHandle handle, out FileIdentity identity, out bool isDirectory)
    {
        Stat st;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (FStatRaw((int)handle.DangerousGetHandle(), &st) != 0)
            {
                identity = default;
                isDirectory = false;
                return Marshal.GetLastPInvokeError();
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }

        identity = new FileIdentity(st.Dev, st.Ino);
        isDirectory = (st.Mode & 0xF000) == 0x4000;
        return 0;
    }

    /// <summary>The identity of a path (following links); errno on failure.</summary>
    public static int FileIdentityOf(string path, out FileIdentity identity, out bool isDirectory)
    {
        Stat st;
        if (StatRaw(path, &st) != 0)
        {
            identity = default;
            isDirectory = false;
            return Marshal.GetLastPInvokeError();
        }

        identity = new FileIdentity(st.Dev, st.Ino);
        isDirectory = (st.Mode & 0xF000) == 0x4000;
        return 0;
    }
}
