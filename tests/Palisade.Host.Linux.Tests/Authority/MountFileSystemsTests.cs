using Palisade.Interop;

namespace Palisade.Host.Linux.Tests.Authority;

/// <summary>
/// The per-mount file system table gives what fstatfs gives, for files on different mounts, asked again (from the
/// table) and asked with a statx that carries no unique mount id (fstatfs each time).
/// </summary>
public sealed unsafe class MountFileSystemsTests
{
    private const uint Mask = FileFacts.STATX_TYPE | FileFacts.STATX_INO | FileFacts.STATX_MNT_ID_UNIQUE;

    [Theory]
    [InlineData("/proc/self/status")]
    [InlineData("/dev/null")]
    [InlineData("/etc/hostname")]
    [InlineData("/sys/kernel")]
    public void The_type_from_the_mount_table_equals_fstatfs_first_and_again(string path)
    {
        using SafeFd file = SafeFd.OpenPath(path);
        Assert.Equal(0, FileFacts.StatxOf(file.Fd, Mask, out StatxBuffer st));
        Assert.Equal(0, FileFacts.FileSystemOf(file.Fd, out StatfsBuffer fs));

        Assert.Equal(fs.Type, MountFileSystems.TypeOf(file.Fd, in st));
        Assert.Equal(fs.Type, MountFileSystems.TypeOf(file.Fd, in st));
    }

    [Fact]
    public void Files_on_two_mounts_keep_their_own_types()
    {
        using SafeFd proc = SafeFd.OpenPath("/proc/self/status");
        using SafeFd etc = SafeFd.OpenPath("/etc/hostname");
        Assert.Equal(0, FileFacts.StatxOf(proc.Fd, Mask, out StatxBuffer procStat));
        Assert.Equal(0, FileFacts.StatxOf(etc.Fd, Mask, out StatxBuffer etcStat));

        long procType = MountFileSystems.TypeOf(proc.Fd, in procStat);
        long etcType = MountFileSystems.TypeOf(etc.Fd, in etcStat);

        Assert.Equal(FileFacts.PROC_SUPER_MAGIC, procType);
        Assert.NotEqual(procType, etcType);
        Assert.Equal(FileFacts.PROC_SUPER_MAGIC, MountFileSystems.TypeOf(proc.Fd, in procStat));
    }

    [Fact]
    public void Without_a_unique_mount_id_the_type_is_asked_of_the_file()
    {
        using SafeFd proc = SafeFd.OpenPath("/proc/self/status");
        Assert.Equal(0, FileFacts.StatxOf(proc.Fd, FileFacts.STATX_TYPE, out StatxBuffer st));
        st.Mask &= ~FileFacts.STATX_MNT_ID_UNIQUE;
        st.MountId = 0;

        Assert.Equal(FileFacts.PROC_SUPER_MAGIC, MountFileSystems.TypeOf(proc.Fd, in st));
    }

    private sealed class SafeFd : IDisposable
    {
        private SafeFd(int fd) => Fd = fd;

        public int Fd { get; }

        public static SafeFd OpenPath(string path)
        {
            byte[] bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
            fixed (byte* p = bytes)
            {
                int fd = Libc.OpenAt(Libc.AT_FDCWD, p, Libc.O_PATH | Libc.O_CLOEXEC, 0);
                Assert.True(fd >= 0, $"open {path}: errno {Libc.LastError}");
                return new SafeFd(fd);
            }
        }

        public void Dispose() => Libc.CloseOwned(Fd);
    }
}
