using Palisade.Interop;

namespace Palisade.Host.Linux.Filtering;

/// <summary>
/// Generates the seccomp BPF program from the subscribed <see cref="SyscallFamilies"/>. The program
/// depends only on the architecture and the system call number (except for the two argument checks
/// below), so the Linux kernel's per-syscall cache lets unmediated calls skip the filter entirely.
/// <list type="bullet">
/// <item>Any other ABI (i386 <c>int 0x80</c>, x32 numbers) fails with ENOSYS whatever is subscribed:
/// the numbers differ there, so a 64-bit filter cannot reason about them.</item>
/// <item>When files are mediated, the calls that reach files without a path the supervisor sees
/// (io_uring, open_by_handle_at/name_to_handle_at) fail with EPERM. Roots, mount namespaces and user namespaces
/// are the guest's own (the supervisor acts in them): they are notified (<see cref="SyscallFamilies.GuestContext"/>),
/// never refused.</item>
/// <item>When files or process creations are decided, clone3 fails with ENOSYS because its flags live in memory a
/// filter cannot read (CLONE_INTO_CGROUP would leave the run's cgroup): libc then falls back to clone, which is
/// notified when process creations are decided.</item>
/// <item>prctl is notified for PR_SET_SECCOMP only (it is frequent: thread names).</item>
/// <item>With <see cref="SyscallFamilies.ImageMappings"/>, mmap is notified only when it asks for PROT_EXEC of a file
/// (not MAP_ANONYMOUS, a descriptor other than -1), and mprotect and pkey_mprotect only when they ask for PROT_EXEC; every
/// other mmap and mprotect runs natively. These checks come first: mmap is among the most frequent calls.</item>
/// <item>sendto without a destination address (args[4] == NULL) is not mediated: it cannot reach a new peer.</item>
/// <item>With the kernel boundary, fcntl and ioctl leave Linux only for the commands that direct a descriptor's
/// signal (F_SETOWN, F_SETOWN_EX, FIOSETOWN, SIOCSPGRP), and userfaultfd without UFFD_USER_MODE_ONLY fails with EPERM.
/// </item>
/// </list>
/// </summary>
internal static class FilterBuilder
{
    private const ushort LdAbsW = 0x20;   // BPF_LD | BPF_W | BPF_ABS
    private const ushort JeqK = 0x15;     // BPF_JMP | BPF_JEQ | BPF_K
    private const ushort JsetK = 0x45;    // BPF_JMP | BPF_JSET | BPF_K
    private const ushort RetK = 0x06;     // BPF_RET | BPF_K


    private const uint PR_SET_SECCOMP = 22;

    /// <summary>mmap's PROT_EXEC and MAP_ANONYMOUS bits.</summary>
    public const uint ProtExec = 0x4, MapAnonymous = 0x20;

    /// <summary>The system calls each family sends to the supervisor.</summary>
    public static ReadOnlySpan<int> NotifiedBy(SyscallFamilies family) => family switch
    {
        SyscallFamilies.FileOpen => [Sys.Open, Sys.Openat, Sys.Openat2, Sys.Creat],
        SyscallFamilies.PathOperations =>
        [
            Sys.Rename, Sys.Renameat, Sys.Renameat2, Sys.Unlink, Sys.Unlinkat, Sys.Rmdir, Sys.Truncate, Sys.Ftruncate,
            Sys.Fallocate, Sys.Chmod, Sys.Fchmod, Sys.Fchmodat, Sys.Fchmodat2, Sys.Chown, Sys.Lchown, Sys.Fchown,
            Sys.Fchownat, Sys.Utime, Sys.Utimes, Sys.Futimesat, Sys.Utimensat, Sys.Setxattr, Sys.Lsetxattr,
            Sys.Fsetxattr, Sys.Setxattrat, Sys.Removexattr, Sys.Lremovexattr, Sys.Fremovexattr, Sys.Removexattrat,
            Sys.Link, Sys.Linkat,
        ],
        SyscallFamilies.CreateNames => [Sys.Mkdir, Sys.Mkdirat, Sys.Mknod, Sys.Mknodat, Sys.Symlink, Sys.Symlinkat],
        SyscallFamilies.FileClose => [Sys.Close],
        SyscallFamilies.Exec => [Sys.Execve, Sys.Execveat],
        SyscallFamilies.Network => [Sys.Connect, Sys.Bind, Sys.Listen, Sys.Accept, Sys.Accept4, Sys.Sendmsg, Sys.Sendmmsg],
        SyscallFamilies.ProcessAccess =>
        [
            Sys.Kill, Sys.Tkill, Sys.Tgkill, Sys.PidfdSendSignal, Sys.PidfdOpen, Sys.PidfdGetfd, Sys.Ptrace,
            Sys.ProcessVmReadv, Sys.ProcessVmWritev,
        ],
        SyscallFamilies.ProcessLifetime => [Sys.Fork, Sys.Vfork, Sys.Exit, Sys.ExitGroup],
        SyscallFamilies.ProcessExits => [Sys.Exit, Sys.ExitGroup],
        SyscallFamilies.GuestContext =>
        [
            Sys.Setuid, Sys.Setgid, Sys.Setreuid, Sys.Setregid, Sys.Setresuid, Sys.Setresgid, Sys.Setfsuid, Sys.Setfsgid,
            Sys.Setgroups, Sys.Capset, Sys.LandlockRestrictSelf, Sys.Seccomp, Sys.Umask, Sys.Chroot, Sys.PivotRoot,
            Sys.Unshare, Sys.Setns, Sys.Execve, Sys.Execveat, Sys.Exit, Sys.ExitGroup,
        ],
        _ => [],
    };

    /// <summary>System calls refused with EPERM whenever a file family is subscribed.</summary>
    public static ReadOnlySpan<int> RefusedWhenFilesMediated =>
    [
        Sys.IoUringSetup, Sys.IoUringEnter, Sys.IoUringRegister, Sys.OpenByHandleAt, Sys.NameToHandleAt,
    ];

    /// <summary>The calls the kernel boundary decides on registers or performs itself, notified whatever else is subscribed.</summary>
    public static ReadOnlySpan<int> NotifiedForTheBoundary =>
    [
        Sys.Open, Sys.Openat, Sys.Openat2, Sys.Creat,
        Sys.Rename, Sys.Renameat, Sys.Renameat2, Sys.Unlink, Sys.Unlinkat, Sys.Rmdir, Sys.Truncate, Sys.Ftruncate,
        Sys.Fallocate, Sys.Chmod, Sys.Fchmod, Sys.Fchmodat, Sys.Fchmodat2, Sys.Chown, Sys.Lchown, Sys.Fchown,
        Sys.Fchownat, Sys.Utime, Sys.Utimes, Sys.Futimesat, Sys.Utimensat, Sys.Setxattr, Sys.Lsetxattr,
        Sys.Fsetxattr, Sys.Setxattrat, Sys.Removexattr, Sys.Lremovexattr, Sys.Fremovexattr, Sys.Removexattrat,
        Sys.Link, Sys.Linkat, Sys.Mkdir, Sys.Mkdirat, Sys.Mknod, Sys.Mknodat, Sys.Symlink, Sys.Symlinkat,
        Sys.Kill, Sys.Tkill, Sys.Tgkill, Sys.RtSigqueueinfo, Sys.RtTgsigqueueinfo, Sys.PidfdOpen, Sys.Ptrace,
        Sys.ProcessVmReadv, Sys.ProcessVmWritev, Sys.PerfEventOpen, Sys.Kcmp, Sys.Prlimit64, Sys.GetRobustList,
        Sys.MovePages, Sys.MigratePages, Sys.SchedSetparam, Sys.SchedSetscheduler, Sys.SchedSetaffinity,
        Sys.SchedSetattr, Sys.Setpriority, Sys.IoprioSet, Sys.Setpgid, Sys.Connect,
    ];

    /// <summary>fcntl commands that choose who receives a descriptor's SIGIO (F_SETOWN, F_SETOWN_EX).</summary>
    public const uint FcntlSetOwner = 8, FcntlSetOwnerEx = 15;

    /// <summary>ioctl requests that do the same (FIOSETOWN, SIOCSPGRP).</summary>
    public const uint IoctlSetOwner = 0x8901, IoctlSetProcessGroup = 0x8902;

    /// <summary>userfaultfd's UFFD_USER_MODE_ONLY: faults of user mode only, so no read the supervisor makes can wait on one.</summary>
    public const uint UserfaultfdUserModeOnly = 1;

    /// <summary>Builds the filter program for <paramref name="families"/>.</summary>
    public static SockFilter[] Build(SyscallFamilies families)
    {
        var code = new List<(SockFilter Instruction, Target True, Target False, int BlockEnd)>();
        bool files = (families & SyscallFamilies.AnyFile) != 0;
        bool lifetime = (families & SyscallFamilies.ProcessLifetime) != 0;
        bool boundary = (families & SyscallFamilies.KernelBoundary) != 0;
        if ((families & SyscallFamilies.ActsForGuests) != 0)
        {
            families |= SyscallFamilies.GuestContext;
        }

        void Add(SockFilter instruction, Target onTrue, Target onFalse) => code.Add((instruction, onTrue, onFalse, -1));

        // An argument check is a block: "is it this call?" (else skip the block), then a load and tests that end in a
        // return. Checks of frequent calls (fcntl, ioctl) come first so that those calls run a few instructions only.
        void Check(int nr, params (SockFilter Instruction, Target True, Target False)[] body)
        {
            int end = code.Count + 1 + body.Length;
            code.Add((Jump(JeqK, (uint)nr), Target.Next, Target.SkipBlock, end));
            foreach (var (instruction, onTrue, onFalse) in body)
            {
                code.Add((instruction, onTrue, onFalse, end));
            }
        }

        Add(Load(Seccomp.DATA_OFFSET_ARCH), Target.Next, Target.Next);
        Add(Jump(JeqK, Seccomp.AUDIT_ARCH_X86_64), Target.Next, Target.Enosys);
        Add(Load(Seccomp.DATA_OFFSET_NR), Target.Next, Target.Next);
        Add(Jump(JsetK, Seccomp.X32_SYSCALL_BIT), Target.Enosys, Target.Next);

        if ((families & SyscallFamilies.ImageMappings) != 0)
        {
            // mmap(addr, length, prot, flags, fd, offset): a file mapped executable. The descriptor is an int: its low word.
            Check(Sys.Mmap,
                (Load(Seccomp.DATA_OFFSET_ARGS + (2 * 8)), Target.Next, Target.Next),
                (Jump(JsetK, ProtExec), Target.Next, Target.Allow),
                (Load(Seccomp.DATA_OFFSET_ARGS + (3 * 8)), Target.Next, Target.Next),
                (Jump(JsetK, MapAnonymous), Target.Allow, Target.Next),
                (Load(Seccomp.DATA_OFFSET_ARGS + (4 * 8)), Target.Next, Target.Next),
                (Jump(JeqK, uint.MaxValue), Target.Allow, Target.Notify));
            Check(Sys.Mprotect,
                (Load(Seccomp.DATA_OFFSET_ARGS + (2 * 8)), Target.Next, Target.Next),
                (Jump(JsetK, ProtExec), Target.Notify, Target.Allow));
            Check(Sys.PkeyMprotect,
                (Load(Seccomp.DATA_OFFSET_ARGS + (2 * 8)), Target.Next, Target.Next),
                (Jump(JsetK, ProtExec), Target.Notify, Target.Allow));
        }

        if (boundary)
        {
            Check(Sys.Fcntl,
                (Load(Seccomp.DATA_OFFSET_ARGS + 8), Target.Next, Target.Next),
                (Jump(JeqK, FcntlSetOwner), Target.Notify, Target.Next),
                (Jump(JeqK, FcntlSetOwnerEx), Target.Notify, Target.Allow));
            Check(Sys.Ioctl,
                (Load(Seccomp.DATA_OFFSET_ARGS + 8), Target.Next, Target.Next),
                (Jump(JeqK, IoctlSetOwner), Target.Notify, Target.Next),
                (Jump(JeqK, IoctlSetProcessGroup), Target.Notify, Target.Allow));
            Check(Sys.Userfaultfd,
                (Load(Seccomp.DATA_OFFSET_ARGS), Target.Next, Target.Next),
                (Jump(JsetK, UserfaultfdUserModeOnly), Target.Allow, Target.Eperm));
        }

        if (files)
        {
            foreach (int nr in RefusedWhenFilesMediated)
            {
                Add(Jump(JeqK, (uint)nr), Target.Eperm, Target.Next);
            }
        }

        if (files || lifetime)
        {
            Add(Jump(JeqK, Sys.Clone3), Target.Enosys, Target.Next);
        }

        var notified = new HashSet<int>();
        for (int bit = 0; bit < 13; bit++)
        {
            var family = (SyscallFamilies)(1 << bit);
            if ((families & family) == 0)
            {
                continue;
            }

            foreach (int nr in family == SyscallFamilies.KernelBoundary ? NotifiedForTheBoundary : NotifiedBy(family))
            {
                if (notified.Add(nr))
                {
                    Add(Jump(JeqK, (uint)nr), Target.Notify, Target.Next);
                }
            }
        }

        // The remaining argument checks reload the accumulator; the last one's "not this call" is the allow.
        if ((families & SyscallFamilies.Network) != 0)
        {
            Check(Sys.Sendto,
                (Load(Seccomp.DATA_OFFSET_ARGS + (4 * 8)), Target.Next, Target.Next),
                (Jump(JeqK, 0), Target.Next, Target.Notify),
                (Load(Seccomp.DATA_OFFSET_ARGS + (4 * 8) + 4), Target.Next, Target.Next),
                (Jump(JeqK, 0), Target.Allow, Target.Notify));
        }

        if ((families & SyscallFamilies.GuestContext) != 0)
        {
            Check(Sys.Prctl,
                (Load(Seccomp.DATA_OFFSET_ARGS), Target.Next, Target.Next),
                (Jump(JeqK, PR_SET_SECCOMP), Target.Notify, Target.Allow));
        }

        if (lifetime)
        {
            Add(Jump(JeqK, Sys.Clone), Target.Notify, Target.Allow);
        }

        int allow = code.Count;
        var program = new SockFilter[allow + 4];
        for (int i = 0; i < allow; i++)
        {
            var (instruction, onTrue, onFalse, blockEnd) = code[i];
            instruction.JumpTrue = Offset(i, onTrue, allow, blockEnd);
            instruction.JumpFalse = Offset(i, onFalse, allow, blockEnd);
            program[i] = instruction;
        }

        program[allow] = Return(Seccomp.SECCOMP_RET_ALLOW);
        program[allow + 1] = Return(Seccomp.SECCOMP_RET_USER_NOTIF);
        program[allow + 2] = Return(Seccomp.SECCOMP_RET_ERRNO | Errno.EPERM);
        program[allow + 3] = Return(Seccomp.SECCOMP_RET_ERRNO | Errno.ENOSYS);
        return program;
    }

    private static byte Offset(int index, Target target, int allow, int blockEnd)
    {
        int destination = target switch
        {
            Target.Next => index + 1,
            Target.SkipBlock => blockEnd,
            Target.Allow => allow,
            Target.Notify => allow + 1,
            Target.Eperm => allow + 2,
            _ => allow + 3,
        };
        int offset = destination - index - 1;
        if (offset is < 0 or > byte.MaxValue)
        {
            throw new InvalidOperationException($"seccomp filter jump out of range ({offset}); the filter has grown past 255 instructions.");
        }

        return (byte)offset;
    }

    private static SockFilter Load(uint offset) => new() { Code = LdAbsW, K = offset };

    private static SockFilter Jump(ushort code, uint k) => new() { Code = code, K = k };

    private static SockFilter Return(uint value) => new() { Code = RetK, K = value };

    private enum Target
    {
        Next,
        SkipBlock,
        Allow,
        Notify,
        Eperm,
        Enosys,
    }
}
