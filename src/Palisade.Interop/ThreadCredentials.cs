using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Palisade.Interop;

/// <summary>
/// The credentials of the calling thread, changed with the raw system calls. Linux keeps credentials per thread;
/// glibc's wrappers (setfsuid, setgroups, ...) broadcast a change to every thread of the process (the "setxid"
/// signal dance), which is exactly what a supervisor acting for several guests at once must not do. Each call here
/// changes the calling thread only (as the kernel NFS server and Samba switch file-system ids per request).
/// </summary>
/// <remarks>
/// setfsuid and setfsgid report no error: they return the previous value whether or not the change was made. The
/// wrappers below confirm a change by reading the value back (a call with -1 changes nothing and returns the current
/// value), so a refused change is never mistaken for a made one.
/// </remarks>
internal static unsafe class ThreadCredentials
{
    /// <summary>_LINUX_CAPABILITY_VERSION_3: 64-bit capability sets in two 32-bit words.</summary>
    public const uint CapabilityVersion3 = 0x20080522;

    /// <summary>The highest capability number this layer knows (CAP_CHECKPOINT_RESTORE).</summary>
    public const int LastCapability = 40;

    /// <summary>Capabilities that a change of the file-system uid from or to 0 drops or restores (CAP_FS_MASK).</summary>
    public const ulong FileSystemCapabilities =
        (1UL << 0) /* CHOWN */ | (1UL << 1) /* DAC_OVERRIDE */ | (1UL << 2) /* DAC_READ_SEARCH */ | (1UL << 3) /* FOWNER */
        | (1UL << 4) /* FSETID */ | (1UL << 9) /* LINUX_IMMUTABLE */ | (1UL << 27) /* MKNOD */ | (1UL << 32) /* MAC_OVERRIDE */;

    public const int CAP_DAC_OVERRIDE = 1;
    public const int CAP_DAC_READ_SEARCH = 2;
    public const int CAP_FOWNER = 3;
    public const int CAP_SETGID = 6;
    public const int CAP_SETUID = 7;
    public const int CAP_SYS_CHROOT = 18;
    public const int CAP_SYS_ADMIN = 21;

    [StructLayout(LayoutKind.Sequential)]
    private struct CapHeader
    {
        public uint Version;
        public int Pid;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapData
    {
        public uint Effective;
        public uint Permitted;
        public uint Inheritable;
    }

    /// <summary>Sets the calling thread's file-system uid; true when it now is <paramref name="uid"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool SetFileSystemUser(uint uid)
    {
        _ = Libc.Syscall(Sys.Setfsuid, uid, 0, 0, 0, 0, 0);
        return (uint)Libc.Syscall(Sys.Setfsuid, -1, 0, 0, 0, 0, 0) == uid;
    }

    /// <summary>Sets the calling thread's file-system gid; true when it now is <paramref name="gid"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool SetFileSystemGroup(uint gid)
    {
        _ = Libc.Syscall(Sys.Setfsgid, gid, 0, 0, 0, 0, 0);
        return (uint)Libc.Syscall(Sys.Setfsgid, -1, 0, 0, 0, 0, 0) == gid;
    }

    /// <summary>
    /// Sets the calling thread's file-system uid and gid back to ids it holds as real or effective ids (its own), which
    /// Linux always allows; not read back.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RestoreFileSystemIds(uint uid, uint gid, bool user, bool group)
    {
        if (user)
        {
            _ = Libc.Syscall(Sys.Setfsuid, uid, 0, 0, 0, 0, 0);
        }

        if (group)
        {
            _ = Libc.Syscall(Sys.Setfsgid, gid, 0, 0, 0, 0, 0);
        }
    }

    /// <summary>Sets the calling thread's supplementary groups; 0 or the errno (EPERM without CAP_SETGID).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int SetGroups(ReadOnlySpan<uint> groups)
    {
        fixed (uint* g = groups)
        {
            return Libc.Syscall(Sys.Setgroups, groups.Length, (long)g, 0, 0, 0, 0) < 0 ? Libc.LastError : 0;
        }
    }

    /// <summary>The calling thread's supplementary groups (getgroups); their count, or -errno.</summary>
    public static int GetGroups(Span<uint> groups)
    {
        fixed (uint* g = groups)
        {
            long n = Libc.Syscall(Sys.Getgroups, groups.Length, (long)g, 0, 0, 0, 0);
            return n < 0 ? -Libc.LastError : (int)n;
        }
    }

    /// <summary>The effective, permitted and inheritable capabilities of the calling thread; 0 or the errno.</summary>
    public static int GetCapabilities(out ulong effective, out ulong permitted, out ulong inheritable)
    {
        var header = new CapHeader { Version = CapabilityVersion3, Pid = 0 };
        CapData* data = stackalloc CapData[2];
        long r = Libc.Syscall(Sys.Capget, (long)&header, (long)data, 0, 0, 0, 0);
        effective = data[0].Effective | ((ulong)data[1].Effective << 32);
        permitted = data[0].Permitted | ((ulong)data[1].Permitted << 32);
        inheritable = data[0].Inheritable | ((ulong)data[1].Inheritable << 32);
        return r < 0 ? Libc.LastError : 0;
    }

    /// <summary>
    /// Sets the calling thread's capability sets (capset on itself). Raising an effective capability needs it in the
    /// permitted set; lowering needs nothing. 0 or the errno.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int SetCapabilities(ulong effective, ulong permitted, ulong inheritable)
    {
        var header = new CapHeader { Version = CapabilityVersion3, Pid = 0 };
        CapData* data = stackalloc CapData[2];
        data[0] = new CapData { Effective = (uint)effective, Permitted = (uint)permitted, Inheritable = (uint)inheritable };
        data[1] = new CapData { Effective = (uint)(effective >> 32), Permitted = (uint)(permitted >> 32), Inheritable = (uint)(inheritable >> 32) };
        return Libc.Syscall(Sys.Capset, (long)&header, (long)data, 0, 0, 0, 0) < 0 ? Libc.LastError : 0;
    }

    /// <summary>Sets the calling thread's umask (its fs context must be its own); returns the previous one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static uint SetUmask(uint mask) => (uint)Libc.Syscall(Sys.Umask, mask, 0, 0, 0, 0, 0);

    /// <summary>Makes the directory <paramref name="path"/> names the calling thread's root (its fs context must be its own); 0 or the errno.</summary>
    public static int ChangeRoot(byte* path) => Libc.Syscall(Sys.Chroot, (long)path, 0, 0, 0, 0, 0) < 0 ? Libc.LastError : 0;

    /// <summary>Makes the directory behind <paramref name="directory"/> the calling thread's root (fchdir, then chroot "."); 0 or the errno.</summary>
    public static int ChangeRoot(int directory)
    {
        if (Libc.Fchdir(directory) < 0)
        {
            return Libc.LastError;
        }

        byte* dot = stackalloc byte[2];
        dot[0] = (byte)'.';
        dot[1] = 0;
        return ChangeRoot(dot);
    }

    /// <summary>Sets no_new_privs on the calling thread (a thread flag in Linux, inherited by threads it creates); 0 or the errno.</summary>
    public static int SetNoNewPrivileges() => Libc.Prctl(Libc.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? Libc.LastError : 0;
}
