namespace Palisade.Host.Linux.Filtering;

/// <summary>
/// The groups of system calls a mediator can subscribe to. Only subscribed families leave the Linux
/// kernel; every other system call runs natively at full speed.
/// </summary>
[Flags]
internal enum SyscallFamilies
{
    /// <summary>Nothing is mediated (only the always-on refusals apply).</summary>
    None = 0,

    /// <summary>open, openat, openat2, creat: pre decision, open performed by the supervisor, post decision.</summary>
    FileOpen = 1 << 0,

    /// <summary>
    /// Every change of an object other than an open: rename*, unlink*, rmdir, truncate, ftruncate, fallocate, chmod*,
    /// fchmod, chown*, fchown, utime, utimes, futimesat, utimensat, the setxattr and removexattr families, link*:
    /// performed by the supervisor after the decision.
    /// </summary>
    PathOperations = 1 << 1,

    /// <summary>close: reported after the fact (costly: every close leaves the kernel).</summary>
    FileClose = 1 << 2,

    /// <summary>execve, execveat: decided on the image's path and identity.</summary>
    Exec = 1 << 3,

    /// <summary>connect, bind, listen, accept/accept4, sendto/sendmsg/sendmmsg with an address.</summary>
    Network = 1 << 4,

    /// <summary>kill, tkill, tgkill, pidfd_send_signal, pidfd_open, pidfd_getfd, ptrace, process_vm_readv/writev.</summary>
    ProcessAccess = 1 << 5,

    /// <summary>fork, vfork, clone (creation, may be denied), exit, exit_group.</summary>
    ProcessLifetime = 1 << 6,

    /// <summary>With <see cref="FileOpen"/>: a post decision on the opened file's identity and canonical path (one readlink per open).</summary>
    FileOpenPost = 1 << 7,

    /// <summary>
    /// exit, exit_group only: the ends of threads and processes, for a mediator that never denies a creation. fork and
    /// clone then run natively: a notified fork that a handled signal (a shell's SIGCHLD) interrupts before the
    /// supervisor receives it fails with EINTR, which Linux never does for a fork.
    /// </summary>
    ProcessExits = 1 << 8,

    /// <summary>
    /// What the kernel boundary needs, whatever drivers are loaded: opens and path operations (a path can name a kernel
    /// task's <c>/proc</c> entry or the kernel's own files), the calls that name another process by a pid in a register,
    /// connect (a kernel-owned socket), and the descriptor-owner calls that direct a signal (fcntl F_SETOWN and
    /// F_SETOWN_EX, ioctl FIOSETOWN and SIOCSPGRP, checked on their command in BPF). userfaultfd that would handle
    /// faults of kernel mode (the supervisor's reads of guest memory) is refused with EPERM. See docs/security.md.
    /// </summary>
    KernelBoundary = 1 << 9,

    /// <summary>
    /// The calls that change what the supervisor acts with for a guest (credentials, sandbox, root, namespaces, umask,
    /// image, end): notified, noted and continued. Never subscribed by a mediator: the filter adds it whenever the
    /// supervisor performs operations for guests (<see cref="ActsForGuests"/>).
    /// </summary>
    GuestContext = 1 << 10,

    /// <summary>mkdir*, mknod*, symlink*: creates of a name that open nothing, decided as creates and performed by the supervisor.</summary>
    CreateNames = 1 << 11,

    /// <summary>
    /// mmap of a file with PROT_EXEC, and mprotect/pkey_mprotect adding PROT_EXEC: decided as image loads. Checked on their
    /// arguments in BPF, so every other mmap and mprotect (the frequent ones: anonymous memory, data mappings) runs natively.
    /// </summary>
    ImageMappings = 1 << 12,

    /// <summary>Every family.</summary>
    All = FileOpen | FileOpenPost | PathOperations | FileClose | Exec | Network | ProcessAccess | ProcessLifetime | ProcessExits | KernelBoundary | CreateNames | ImageMappings,

    /// <summary>The families whose operations the supervisor performs itself, as the guest: they bring <see cref="GuestContext"/>.</summary>
    ActsForGuests = FileOpen | FileOpenPost | PathOperations | Exec | Network | CreateNames | KernelBoundary,

    /// <summary>The families that make the file system a mediated resource, which brings the file-system refusals.</summary>
    AnyFile = FileOpen | FileOpenPost | PathOperations | FileClose | Exec | KernelBoundary | CreateNames,
}
