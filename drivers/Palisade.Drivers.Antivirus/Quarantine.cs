// Moving an infected file out of the way, through the driver API's own I/O: a rename and a change of mode sent to the
// minifilters below the antivirus's scan filter (IFilterManager.RenameFile and SetFileInformation), so that those
// filters see the move, and never replacing a file already in the quarantine folder.
using System.Globalization;
using Palisade.Api;

namespace Palisade.Drivers.Antivirus;

internal static class Quarantine
{
    private const long OwnerReadWrite = 0x180; // 0600

    /// <summary>Moves <paramref name="path"/> into <paramref name="folder"/> under a unique name and makes it
    /// readable and writable by its owner only (never executable).</summary>
    /// <param name="files">The driver's filter manager.</param>
    /// <param name="filter">The filter whose own I/O this is: filters below it see the rename.</param>
    /// <param name="folder">The quarantine folder; it must exist.</param>
    /// <param name="path">The infected file.</param>
    /// <param name="destination">The new path, on success.</param>
    /// <returns>Success with the new path, or the reason the file stays where it is (the rename's status).</returns>
    public static Status Move(IFilterManager files, CallbackCookie filter, string folder, string path, out string? destination)
    {
        destination = null;
        string name = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmssfffffff", CultureInfo.InvariantCulture) + "-"
            + Path.GetFileName(path) + ".quarantined";
        string target = Path.Combine(folder, name);
        Status s = files.RenameFile(filter, path, target);
        if (s.IsError)
        {
            return s;
        }

        // Moved is moved: a mode that could not be narrowed is not a reason to report the file as still in place.
        files.SetFileInformation(filter, target, FileInformationClass.Mode, OwnerReadWrite);
        destination = target;
        return Status.Success;
    }
}
