// flock(2) taken explicitly on the hive's lock file. .NET also flocks files opened with FileShare.None, but that can
// be switched off by the environment (DOTNET_SYSTEM_IO_DISABLEFILELOCKING); the single-writer rule of a hive must
// not depend on it.
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Palisade.Interop;

internal static partial class FileLock
{
    private const int LockEx = 2;
    private const int LockNb = 4;

    /// <summary>EWOULDBLOCK: another open file description holds a conflicting lock.</summary>
    public const int WouldBlock = 11;

    private const int EIntr = 4;

    /// <summary>Takes an exclusive lock on the file without waiting. The lock lasts until the handle is closed.</summary>
    /// <returns>0, <see cref="WouldBlock"/> when another holder has the file, or another errno.</returns>
    public static int TryLockExclusive(SafeFileHandle file)
    {
        while (true)
        {
            if (Flock(file, LockEx | LockNb) == 0)
            {
                return 0;
            }

            int error = Marshal.GetLastPInvokeError();
            if (error != EIntr)
            {
                return error;
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(SafeFileHandle fd, int operation);
}
