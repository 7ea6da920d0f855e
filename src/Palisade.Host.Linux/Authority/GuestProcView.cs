using System.Buffers.Text;
using Palisade.Interop;
using Palisade.Host.Linux.Supervision;

namespace Palisade.Host.Linux.Authority;

/// <summary>
/// What "/proc/self" names for a guest whose root is not the supervisor's. Linux resolves /proc/self with the pid of
/// whoever looks it up, in the pid namespace of the proc mount being looked at; when the supervisor looks it up for
/// the guest, that would be the supervisor. So the guest's own pid is found as its /proc numbers it: the supervisor's
/// pid numbering when the guest's /proc is a proc mount of the supervisor's pid namespace (a chroot or mount namespace
/// that kept the host's /proc), or the guest's innermost pid when it is a proc mount of the guest's own pid namespace.
/// </summary>
internal static unsafe class GuestProcView
{
    /// <summary>
    /// The guest's process and thread ids as its /proc names them. False when its /proc is no proc mount, or one of a
    /// pid namespace that is neither the supervisor's nor the guest's: the path is then resolved as written, and
    /// "self" names nobody the supervisor could reach in a namespace it is not in.
    /// </summary>
    public static bool TryNumbers(SupervisedThread thread, Scratch s, ref int process, ref int threadId)
    {
        GuestAuthority guest = thread.Authority;
        int proc = GuestResolver.OpenObject(guest, Libc.AT_FDCWD, "/proc\0"u8, follow: true);
        if (proc < 0)
        {
            return false;
        }

        try
        {
            if (FileFacts.FileSystemOf(proc, out StatfsBuffer fs) != 0 || fs.Type != FileFacts.PROC_SUPER_MAGIC)
            {
                return false;
            }

            Span<byte> link = stackalloc byte[64];
            int length = ReadLink(proc, "self\0"u8, link);
            if (length > 0 && Utf8Parser.TryParse(link[..length], out int self, out int used) && used == length && self == Environment.ProcessId)
            {
                return true; // the supervisor's pid namespace: the numbers the supervisor knows
            }

            // A proc mount of another pid namespace: the guest's own if its init process is in the guest's namespace.
            length = ReadLink(proc, "1/ns/pid\0"u8, link);
            Span<byte> own = stackalloc byte[64];
            ProcFs.Format(s.Proc2, threadId, "ns/pid"u8);
            int ownLength = ReadLink(Libc.AT_FDCWD, s.Proc2, own);
            if (length <= 0 || ownLength != length || !link[..length].SequenceEqual(own[..ownLength]))
            {
                return false;
            }

            int status = ProcFs.ReadStatus(threadId, s.Proc2, s.Status);
            if (status <= 0 || !Innermost(s.Status.AsSpan(0, status), "NStgid:"u8, out int innerProcess)
                || !Innermost(s.Status.AsSpan(0, status), "NSpid:"u8, out int innerThread))
            {
                return false;
            }

            (process, threadId) = (innerProcess, innerThread);
            return true;
        }
        finally
        {
            Libc.CloseOwned(proc);
        }
    }

    private static int ReadLink(int directory, ReadOnlySpan<byte> path, Span<byte> destination)
    {
        fixed (byte* p = path)
        fixed (byte* d = destination)
        {
            return (int)Libc.ReadLinkAt(directory, p, d, (nuint)destination.Length);
        }
    }

    /// <summary>The last number of a status line such as "NSpid:\t4242\t7\t1": the id in the innermost namespace.</summary>
    private static bool Innermost(ReadOnlySpan<byte> status, ReadOnlySpan<byte> key, out int value)
    {
        value = 0;
        int at = status.IndexOf(key);
        if (at < 0)
        {
            return false;
        }

        ReadOnlySpan<byte> line = status[(at + key.Length)..];
        int end = line.IndexOf((byte)'\n');
        line = (end < 0 ? line : line[..end]).TrimEnd("\t "u8);
        int start = line.LastIndexOfAny((byte)'\t', (byte)' ') + 1;
        return Utf8Parser.TryParse(line[start..], out value, out _);
    }
}
