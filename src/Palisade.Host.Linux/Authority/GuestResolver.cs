using System.Runtime.CompilerServices;
using Palisade.Interop;

namespace Palisade.Host.Linux.Authority;

/// <summary>
/// Resolves what a guest names, as the guest (its credentials and root, through <see cref="GuestAction"/>), into
/// handles the supervisor then acts on: the directory that holds a name, or the object itself. Every lookup refuses
/// magic links (RESOLVE_NO_MAGICLINKS): a /proc/PID/fd/N, cwd, root or exe link would be followed by the supervisor's
/// thread, not the guest's. Handles are O_PATH: they open nothing and check no permission but search permission on the
/// way, which is exactly what the guest's own lookup checks.
/// </summary>
internal static unsafe class GuestResolver
{
    /// <summary>
    /// The directory <paramref name="directoryWithNul"/> names relative to <paramref name="baseFd"/> (a directory handle
    /// of the guest's, or AT_FDCWD for an absolute name), as an O_PATH handle the caller owns; -errno when the lookup
    /// fails as it would for the guest. An empty name is the base itself: <paramref name="owned"/> is then false and
    /// the base is returned.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    /// <remarks><paramref name="resolve"/> adds RESOLVE_* flags of the guest's own (openat2 RESOLVE_BENEATH, RESOLVE_IN_ROOT).</remarks>
    public static int OpenDirectory(GuestAuthority guest, int baseFd, ReadOnlySpan<byte> directoryWithNul, out bool owned, ulong resolve = 0)
    {
        owned = false;
        if (directoryWithNul.Length <= 1 || directoryWithNul[0] == 0)
        {
            return baseFd;
        }

        int fd = Open(guest, baseFd, directoryWithNul, Libc.O_DIRECTORY, follow: true, descriptorLink: false, resolve);
        owned = fd >= 0;
        return fd;
    }

    /// <summary>
    /// The object <paramref name="pathWithNul"/> names relative to <paramref name="directory"/>, as an O_PATH handle
    /// the caller owns, following a final symbolic link when <paramref name="follow"/>; -errno when the lookup fails.
    /// </summary>
    /// <remarks>
    /// <paramref name="descriptorLink"/> is for a path that is exactly a guest's /proc/PID/fd/N (see
    /// <see cref="Syscalls.PathResolution.IsGuestDescriptorLink"/>): its one magic link, the last component, is followed
    /// in the supervisor's root, where that /proc is.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int OpenObject(GuestAuthority guest, int directory, ReadOnlySpan<byte> pathWithNul, bool follow, bool descriptorLink = false) =>
        Open(guest, directory, pathWithNul, 0, follow, descriptorLink);

    private static int Open(GuestAuthority guest, int directory, ReadOnlySpan<byte> pathWithNul, int flags, bool follow, bool descriptorLink = false, ulong resolve = 0)
    {
        fixed (byte* p = pathWithNul)
        {
            var how = new OpenPathAction
            {
                Directory = directory,
                Path = p,
                Flags = (ulong)(Libc.O_PATH | Libc.O_CLOEXEC | flags | (follow ? 0 : Libc.O_NOFOLLOW)),
                Resolve = descriptorLink ? 0 : Libc.RESOLVE_NO_MAGICLINKS | resolve,
            };
            return (int)GuestAction.Run(guest, ref how, inGuestRoot: !descriptorLink);
        }
    }

    private struct OpenPathAction : IGuestAction
    {
        public int Directory;
        public byte* Path;
        public ulong Flags;
        public ulong Resolve;

        public readonly long Run()
        {
            var how = new OpenHowArgs { Flags = Flags, Resolve = Resolve };
            long fd = Libc.Syscall(Sys.Openat2, Directory, (long)Path, (long)&how, Libc.OPEN_HOW_SIZE_VER0, 0, 0);
            return fd < 0 ? -Libc.LastError : fd;
        }
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct OpenHowArgs
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }
}
