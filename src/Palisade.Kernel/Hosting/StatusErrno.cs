// The one table between kernel status codes and Linux errno values. It is the table the driver API documents: each
// code of Palisade.Api.Status names its errno ("Errno: X" in its XML documentation), and a test reads that
// documentation and checks it against this table.
using System.Runtime.CompilerServices;
using Palisade.Api;
using Palisade.Interop;

namespace Palisade.Kernel.Hosting;

/// <summary>
/// Maps a kernel status to the errno a guest sees, and the errno of an operation performed for a guest or a driver back
/// to a status. Used by the host (answers to guests) and by the kernel (its own file system work).
/// </summary>
public static class StatusErrno
{
    /// <summary>The errno of each status that documents one; every other error status maps to <see cref="Errno.EPERM"/>.</summary>
    private static readonly (Status Status, int Errno)[] s_table =
    [
        (Status.Unsuccessful, Errno.EPERM),
        (Status.InvalidHandle, Errno.EBADF),
        (Status.InvalidParameter, Errno.EINVAL),
        (Status.AccessDenied, Errno.EACCES),
        (Status.BufferTooSmall, Errno.ERANGE),
        (Status.ObjectNameInvalid, Errno.EINVAL),
        (Status.ObjectNameNotFound, Errno.ENOENT),
        (Status.ObjectNameCollision, Errno.EEXIST),
        (Status.ObjectPathNotFound, Errno.ENOENT),
        (Status.SharingViolation, Errno.EBUSY),
        (Status.RegistryCorrupt, Errno.EIO),
        (Status.RegistryIoFailed, Errno.EIO),
        (Status.InsufficientResources, Errno.ENOMEM),
        (Status.IoTimeout, Errno.ETIMEDOUT),
        (Status.NotSupported, Errno.EOPNOTSUPP),
        (Status.NetworkAccessDenied, Errno.EACCES),
        (Status.Cancelled, Errno.EACCES),
        (Status.CannotDelete, Errno.EPERM),
        (Status.KeyHasChildren, Errno.ENOTEMPTY),
        (Status.NotFound, Errno.ENOENT),
        (Status.ConnectionRefused, Errno.ECONNREFUSED),
        (Status.InvalidDeviceState, Errno.EINVAL),
    ];

    /// <summary>The errno of each status that documents one, in the order of <see cref="Status"/>'s codes.</summary>
    public static ReadOnlySpan<(Status Status, int Errno)> Table => s_table;

    /// <summary>The errno a guest sees for <paramref name="status"/>: 0 for success, EPERM for an error status the API gives no errno.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int ErrnoOf(Status status)
    {
        if (status.IsSuccess)
        {
            return 0;
        }

        // Deny verdicts are almost always AccessDenied: answer it before the walk.
        if (status == Status.AccessDenied)
        {
            return Errno.EACCES;
        }

        foreach ((Status s, int errno) in s_table)
        {
            if (s == status)
            {
                return errno;
            }
        }

        return Errno.EPERM;
    }

    /// <summary>
    /// The status a post callback sees for an operation the host performed and Linux failed with <paramref name="errno"/>
    /// (0 is success). The reverse of <see cref="Table"/> where it is unambiguous; ENOTDIR is a missing path component,
    /// EPERM and EISDIR a denial, EXDEV an invalid pair of names, and an errno without a status of its own is <see cref="Status.Unsuccessful"/>.
    /// </summary>
    public static Status StatusOf(int errno) => errno switch
    {
        0 => Status.Success,
        Errno.ENOENT => Status.ObjectNameNotFound,
        Errno.ENOTDIR => Status.ObjectPathNotFound,
        Errno.EPERM or Errno.EACCES or Errno.EISDIR => Status.AccessDenied,
        Errno.EEXIST => Status.ObjectNameCollision,
        Errno.ENOTEMPTY => Status.KeyHasChildren,
        Errno.EBUSY => Status.SharingViolation,
        Errno.EINVAL or Errno.EXDEV => Status.InvalidParameter,
        Errno.ENOMEM => Status.InsufficientResources,
        Errno.EBADF => Status.InvalidHandle,
        Errno.EOPNOTSUPP => Status.NotSupported,
        _ => Status.Unsuccessful,
    };
}
