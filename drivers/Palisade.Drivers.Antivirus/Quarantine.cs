// Moving an infected file out of the way. The move uses plain System.IO: the driver runs in the kernel process,
// and the driver API's own I/O (IFilterManager.OpenFile) opens files but cannot rename them, so there is no way to
// do a move through the filter stack. The consequence is that filters below the antivirus do not see the move.
using System.Globalization;
using Palisade.Api;

namespace Palisade.Drivers.Antivirus;

internal static class Quarantine
{
    /// <summary>Moves <paramref name="path"/> into <paramref name="folder"/> under a unique name and makes it
    /// readable and writable by its owner only (never executable).</summary>
    /// <returns>Success with the new path, or the reason the file stays where it is.</returns>
    public static Status Move(string folder, string path, out string? destination)
    {
        destination = null;
        string name = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmssfffffff", CultureInfo.InvariantCulture) + "-"
            + Path.GetFileName(path) + ".quarantined";
        string target = Path.Combine(folder, name);
        try
        {
            File.Move(path, target, overwrite: false);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }
        catch (FileNotFoundException)
        {
            return Status.ObjectNameNotFound;
        }
        catch (UnauthorizedAccessException)
        {
            return Status.AccessDenied;
        }
        catch (IOException)
        {
            return Status.Unsuccessful;
        }

        destination = target;
        return Status.Success;
    }
}
