// fsync(2) of a directory, which .NET does not offer: after a hive is atomically renamed into place, the directory
// entry itself must reach the disk for the rename to survive a power loss.
using System.Runtime.InteropServices;

namespace Palisade.Interop;

internal static partial class DirectorySync
{
    private const int ORdOnly = 0x0000;
    private const int ODirectory = 0x1_0000;
    private const int OCloexec = 0x8_0000;

    /// <summary>Flushes the directory's entries to disk.</summary>
    /// <returns>0, or the errno of the failing call (open or fsync).</returns>
    public static int Sync(string directory)
    {
        int fd = Open(directory, ORdOnly | ODirectory | OCloexec);
        if (fd < 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        int error = FSync(fd) < 0 ? Marshal.GetLastPInvokeError() : 0;

        // close(2) of a read-only directory descriptor reports nothing actionable; its failure is ignored.
        _ = Close(fd);
        return error;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
