namespace Palisade.Interop;

/// <summary>The Linux x86-64 errno values the host produces or inspects.</summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int E2BIG = 7;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EFAULT = 14;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EXDEV = 18;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int EMFILE = 24;
    public const int ERANGE = 34;
    public const int ENAMETOOLONG = 36;
    public const int ELOOP = 40;
    public const int ENOSYS = 38;
    public const int ENOTEMPTY = 39;
    public const int ENOTSOCK = 88;
    public const int EOPNOTSUPP = 95;
    public const int EAFNOSUPPORT = 97;
    public const int ECONNABORTED = 103;
    public const int ETIMEDOUT = 110;
    public const int ECONNREFUSED = 111;
    public const int EINPROGRESS = 115;
}
