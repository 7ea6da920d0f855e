// Moving an infected file out of the way, through the driver API's own I/O: a rename and a change of mode sent to the
// minifilters below the antivirus's scan filter (IFilterManager.RenameFile and SetFileInformation), so that those
// filters see the move, and never replacing a file already in the quarantine folder. The rename names the file that was
// scanned by its identity: the kernel moves it only if the path still names that very file without following a symbolic
// link, so a path handed over through a link (l/../../target) or a name swapped after the scan moves nothing.
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
    /// <param name="scanned">The identity of the file the scan read: only that file is moved.</param>
    /// <param name="destination">The new path, on success.</param>
    /// <returns>Success with the new path, or the reason the file stays where it is (the rename's status:
    /// <see cref="Status.FileIdentityMismatch"/> when the path no longer names the scanned file).</returns>
    public static Status Move(IFilterManager files, CallbackCookie filter, string folder, string path, FileIdentity scanned, out string? destination)
    {
        destination = null;
        if (scanned.IsNone)
        {
            // Nothing says which file was scanned: moving whatever the path names now could move another file.
            return Status.InvalidParameter;
        }

        string name = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmssfffffff", CultureInfo.InvariantCulture) + "-"
            + Path.GetFileName(path) + ".quarantined";
        string target = Path.Combine(folder, name);
        Status s = files.RenameFile(filter, path, target, scanned);
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
