using System.Text;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Kernel.Hosting;

namespace Palisade.Kernel.Io;

/// <summary>
/// A rename or delete that acts only on the file a driver decided on (<see cref="IFilterManager.RenameFile(CallbackCookie,
/// string, string, FileIdentity)"/>): the folder of the name is opened with no symbolic link resolved (openat2
/// RESOLVE_NO_SYMLINKS, so <c>l/../../target</c> through a link <c>l</c> opens nothing), the last name's identity is read in
/// that very folder without following it, and the rename or unlink is made relative to the same folder descriptor. Between
/// the check and the act the name can only change by a rename inside that folder, which a driver's quarantine of an infected
/// file cannot prevent on Linux either (there is no rename-by-descriptor); what it can no longer do is act on another file
/// through a path text that resolves differently from what was scanned.
/// </summary>
internal static unsafe class DecidedFile
{
    /// <summary>Renames <paramref name="path"/> to <paramref name="newPath"/> (never replacing) if the name is <paramref name="expected"/>.</summary>
    public static Status Rename(string path, string newPath, FileIdentity expected)
    {
        int folder = -1, newFolder = -1;
        try
        {
            Status s = OpenFolder(path, out folder, out byte[] name);
            if (s.IsError)
            {
                return s;
            }

            s = Check(folder, name, expected);
            if (s.IsError)
            {
                return s;
            }

            s = OpenFolder(newPath, out newFolder, out byte[] newName);
            if (s.IsError)
            {
                return s;
            }

            fixed (byte* from = name)
            fixed (byte* to = newName)
            {
                return Libc.RenameAt2(folder, from, newFolder, to, Libc.RENAME_NOREPLACE) == 0 ? Status.Success : StatusErrno.StatusOf(Libc.LastError);
            }
        }
        finally
        {
            Libc.CloseOwned(folder);
            Libc.CloseOwned(newFolder);
        }
    }

    /// <summary>Unlinks <paramref name="path"/> (not a directory) if the name is <paramref name="expected"/>.</summary>
    public static Status Delete(string path, FileIdentity expected)
    {
        int folder = -1;
        try
        {
            Status s = OpenFolder(path, out folder, out byte[] name);
            if (s.IsError)
            {
                return s;
            }

            s = Check(folder, name, expected);
            if (s.IsError)
            {
                return s;
            }

            fixed (byte* n = name)
            {
                return Libc.UnlinkAt(folder, n, 0) == 0 ? Status.Success : StatusErrno.StatusOf(Libc.LastError);
            }
        }
        finally
        {
            Libc.CloseOwned(folder);
        }
    }

    /// <summary>Opens the folder of an absolute path O_PATH with no symbolic link followed; the last name comes back NUL-terminated.</summary>
    private static Status OpenFolder(string path, out int folder, out byte[] name)
    {
        folder = -1;
        name = [];
        int slash = path.LastIndexOf('/');
        string leaf = path[(slash + 1)..];
        if (slash < 0 || leaf.Length == 0 || leaf is "." or "..")
        {
            return Status.InvalidParameter;
        }

        name = Encoding.UTF8.GetBytes(leaf + "\0");
        byte[] directory = Encoding.UTF8.GetBytes((slash == 0 ? "/" : path[..slash]) + "\0");
        var how = new OpenHow { Flags = (ulong)(Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC), Resolve = Libc.RESOLVE_NO_SYMLINKS | Libc.RESOLVE_NO_MAGICLINKS };
        long fd;
        fixed (byte* d = directory)
        {
            fd = Libc.Syscall(Sys.Openat2, Libc.AT_FDCWD, (long)d, (long)&how, Libc.OPEN_HOW_SIZE_VER0, 0, 0);
        }

        if (fd < 0)
        {
            // A symbolic link on the way (ELOOP) reaches the file only through a link; a missing folder is a missing path.
            int errno = Libc.LastError;
            return errno switch
            {
                Errno.ELOOP => Status.FileIdentityMismatch,
                Errno.ENOENT => Status.ObjectPathNotFound,
                _ => StatusErrno.StatusOf(errno),
            };
        }

        folder = (int)fd;
        return Status.Success;
    }

    /// <summary>The last name, not followed, must be <paramref name="expected"/>.</summary>
    private static Status Check(int folder, byte[] name, FileIdentity expected)
    {
        Stat stat;
        fixed (byte* n = name)
        {
            if (Libc.FStatAt(folder, n, &stat, Libc.AT_SYMLINK_NOFOLLOW) != 0)
            {
                return StatusErrno.StatusOf(Libc.LastError);
            }
        }

        return new FileIdentity(stat.Dev, stat.Ino) == expected ? Status.Success : Status.FileIdentityMismatch;
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }
}
