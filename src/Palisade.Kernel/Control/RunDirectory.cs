using Palisade.Interop;

namespace Palisade.Kernel.Control;

/// <summary>
/// <c>$PALISADE_HOME/run</c>: the kernel-owned directory its sockets live in. Mode 0700 and owned by the user the
/// kernel runs as; the kernel refuses to listen in a directory that anyone else could write to or look into.
/// </summary>
internal static class RunDirectory
{
    public const string Name = "run";

    public static string PathOf(string home) => System.IO.Path.Combine(home, Name);

    /// <summary>Creates the directory (0700) if needed, and checks that it is a real directory, owned by this process's
    /// user, with no access for group or others.</summary>
    /// <returns>Null when the directory is fit; otherwise why not.</returns>
    public static string? Prepare(string home)
    {
        string dir = PathOf(home);
        if (!OperatingSystem.IsLinux())
        {
            return "the kernel's sockets need Linux";
        }

        try
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "cannot create " + dir + ": " + e.Message;
        }

        int error = Libc.OwnerAndMode(dir, out uint uid, out uint mode, out _);
        if (error != 0)
        {
            return "cannot examine " + dir + ": errno " + error;
        }

        if ((mode & 0xF000) != 0x4000)
        {
            return dir + " is not a directory (a symbolic link or another file is in its place)";
        }

        if (uid != Libc.GetEUid())
        {
            return dir + " belongs to user " + uid + ", not to the kernel's user " + Libc.GetEUid();
        }

        if ((mode & 0x3F) != 0)
        {
            return dir + " gives access to group or others (mode " + Convert.ToString(mode & 0x1FF, 8) + "); it must be 700";
        }

        return null;
    }
}
