using Palisade.Api;
using Palisade.Host.Linux.Mediation;
using Palisade.Host.Linux.Authority;
using Palisade.Kernel.Hosting;
using Palisade.Interop;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// Executable mappings of files: every shared library, dlopen, program started through the dynamic loader, and any other
/// file a process maps to run code from is an image load. The filter notifies only mmap with PROT_EXEC of a descriptor and
/// mprotect/pkey_mprotect adding PROT_EXEC (<see cref="Filtering.SyscallFamilies.ImageMappings"/>); nothing is mapped yet
/// when the decision is made, so a denial is the call's EACCES.
/// <list type="bullet">
/// <item>mmap: the file is the guest's descriptor, taken with pidfd_getfd (the same open file description), as every call on a
/// descriptor is. The call then continues in Linux, which looks the descriptor number up again: just before it continues,
/// the guest's descriptor must still name the file decided on (another thread could have put another file under that
/// number meanwhile); what remains is the instant between that check and Linux's lookup (docs/security.md).</item>
/// <item>mprotect: the files are those of the file mappings in the range, read from /proc/PID/maps. Anonymous memory (a
/// JIT's) is no image. Another thread can replace a mapping between the read and the call (munmap and mmap at the same
/// address), which this cannot prevent (docs/security.md); mapping a file executable that way is itself an mmap decided
/// above, so the gap is a file first mapped without PROT_EXEC at the address just read.</item>
/// </list>
/// </summary>
internal sealed unsafe partial class Supervisor
{
    private void HandleImageMapping(in SeccompNotif n, SupervisedThread thread, Scratch s)
    {
        Requester requester = thread.Requester with { CallId = n.Id };
        int error = n.Data.Nr == Sys.Mmap
            ? DecideExecutableMap(in n, thread, requester, s)
            : DecideExecutableProtect(in n, requester, s);
        if (error != 0)
        {
            Reply(n.Id, error);
            return;
        }

        Continue(n.Id);
    }

    /// <summary>mmap(addr, length, prot, flags, fd, offset) of a file with PROT_EXEC: 0 or the errno.</summary>
    private int DecideExecutableMap(in SeccompNotif n, SupervisedThread thread, in Requester requester, Scratch s)
    {
        int fd = (int)n.Data.Args[4];
        int copy = TakeGuestFd(thread.Process, fd);
        if (copy < 0)
        {
            // EBADF as Linux's mmap answers; the process may also be gone.
            return -copy;
        }

        try
        {
            Stat stat;
            if (Libc.FStat(copy, &stat) != 0)
            {
                return Libc.LastError;
            }

            int length = ProcFs.ReadSelfFdLink(copy, s.Proc, s.Resolved);
            var file = new FileIdentity(stat.Dev, stat.Ino);
            var call = new ImageMappingCall
            {
                Path = length > 0 ? s.Resolved.AsSpan(0, length) : default,
                Image = file,
                Type = Libc.TypeOf(stat.Mode),
            };
            int decision = _mediator.ImageMapping(requester, call);
            if (decision != 0)
            {
                return decision;
            }

            // Still the file decided on under that number (the descriptor table is the process's, any thread can change it).
            ProcFs.FormatFd(s.Proc, (int)n.Pid, fd);
            Stat now;
            fixed (byte* p = s.Proc)
            {
                if (Libc.FStatAt(Libc.AT_FDCWD, p, &now, 0) != 0 || new FileIdentity(now.Dev, now.Ino) != file)
                {
                    return Errno.EACCES;
                }
            }

            return 0;
        }
        finally
        {
            Libc.CloseOwned(copy);
        }
    }

    /// <summary>mprotect/pkey_mprotect(addr, length, prot, ...) adding PROT_EXEC: each file mapped in the range is an image load.</summary>
    private int DecideExecutableProtect(in SeccompNotif n, in Requester requester, Scratch s)
    {
        ulong start = n.Data.Args[0];
        ulong end = start + ((n.Data.Args[1] + 4095) & ~4095UL);
        if (end <= start)
        {
            // Linux's answer (EINVAL, ENOMEM) for a bad range is its own: nothing is made executable.
            return 0;
        }

        FileIdentity decided = default;
        var maps = new ProcMaps(requester.ProcessId, s.Proc2, s.Value);
        try
        {
            while (maps.Next(out MapLine line))
            {
                if (line.End <= start || line.Start >= end || line.File.IsNone || line.File == decided)
                {
                    continue;
                }

                var call = new ImageMappingCall { Path = line.Name, Image = line.File, Type = MappedFileType(requester.ProcessId, in line, s.Proc) };
                int decision = _mediator.ImageMapping(requester, call);
                if (decision != 0)
                {
                    return decision;
                }

                decided = line.File;
            }
        }
        finally
        {
            maps.Dispose();
        }

        return 0;
    }

    /// <summary>
    /// The type of the file behind a mapping, from /proc/PID/map_files/START-END (stat follows it to the file); a regular
    /// file when that cannot be read (it needs CAP_SYS_ADMIN) or names another file, so that a driver still looks at it.
    /// </summary>
    private static FileObjectType MappedFileType(int process, in MapLine line, Span<byte> proc)
    {
        var name = new Utf8Builder(proc).Append("/proc/"u8).Append(process).Append("/map_files/"u8);
        int length = name.Length;
        length += Hex(line.Start, proc[length..]);
        proc[length++] = (byte)'-';
        length += Hex(line.End, proc[length..]);
        proc[length] = 0;
        Stat stat;
        fixed (byte* p = proc)
        {
            return Libc.FStatAt(Libc.AT_FDCWD, p, &stat, 0) == 0 && new FileIdentity(stat.Dev, stat.Ino) == line.File
                ? Libc.TypeOf(stat.Mode)
                : FileObjectType.Regular;
        }
    }

    /// <summary>Writes <paramref name="value"/> in lowercase hex without leading zeros, as /proc names mappings.</summary>
    private static int Hex(ulong value, Span<byte> destination)
    {
        bool ok = System.Buffers.Text.Utf8Formatter.TryFormat(value, destination, out int written, new System.Buffers.StandardFormat('x'));
        System.Diagnostics.Debug.Assert(ok);
        return written;
    }
}
