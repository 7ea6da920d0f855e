using Palisade.Interop;
using Palisade.Host.Linux.Filtering;

namespace Palisade.Host.Linux.Tests;

/// <summary>Runs the generated BPF program on seccomp_data values, with the subset of classic BPF the builder emits.</summary>
public sealed class FilterBuilderTests
{
    private const uint Allow = 0x7fff0000;
    private const uint Notify = 0x7fc00000;
    private const uint Eperm = 0x00050000 | 1;
    private const uint Enosys = 0x00050000 | 38;
    private const uint X86_64 = 0xc000003e;

    [Fact]
    public void Unmediated_calls_are_allowed_in_the_kernel()
    {
        Assert.Equal(Allow, Evaluate(SyscallFamilies.All, X86_64, 39 /* getpid */));
    }

    [Fact]
    public void Subscribed_opens_go_to_the_supervisor()
    {
        Assert.Equal(Notify, Evaluate(SyscallFamilies.FileOpen, X86_64, 257));
    }

    [Fact]
    public void Unsubscribed_opens_stay_in_the_kernel()
    {
        Assert.Equal(Allow, Evaluate(SyscallFamilies.Network, X86_64, 257));
    }

    [Fact]
    public void I386_calls_are_refused_with_ENOSYS_even_with_no_subscription()
    {
        Assert.Equal(Enosys, Evaluate(SyscallFamilies.None, 0x40000003, 5 /* i386 open */));
    }

    [Fact]
    public void X32_numbers_are_refused_with_ENOSYS()
    {
        Assert.Equal(Enosys, Evaluate(SyscallFamilies.None, X86_64, 0x40000000 | 257));
    }

    [Fact]
    public void Io_uring_is_refused_with_EPERM_when_files_are_mediated()
    {
        Assert.Equal(Eperm, Evaluate(SyscallFamilies.FileOpen, X86_64, 425));
    }

    [Fact]
    public void Clone_with_a_new_mount_namespace_runs_in_the_kernel_when_files_are_mediated()
    {
        Assert.Equal(Allow, Evaluate(SyscallFamilies.FileOpen, X86_64, 56, arg0: 0x20000 | 17));
    }

    [Theory]
    [InlineData(161)] // chroot
    [InlineData(272)] // unshare
    [InlineData(308)] // setns
    [InlineData(155)] // pivot_root
    [InlineData(95)] // umask
    public void Calls_that_change_a_guests_root_namespace_or_umask_are_notified_when_the_supervisor_acts_for_guests(uint nr)
    {
        Assert.Equal(Notify, Evaluate(SyscallFamilies.FileOpen, X86_64, nr));
    }

    [Theory]
    [InlineData(105)] // setuid
    [InlineData(117)] // setresuid
    [InlineData(122)] // setfsuid
    [InlineData(116)] // setgroups
    [InlineData(126)] // capset
    [InlineData(446)] // landlock_restrict_self
    [InlineData(317)] // seccomp
    [InlineData(59)] // execve
    [InlineData(60)] // exit
    public void Calls_that_change_a_guests_credentials_sandbox_or_image_are_notified_when_the_supervisor_acts_for_guests(uint nr)
    {
        Assert.Equal(Notify, Evaluate(SyscallFamilies.Network, X86_64, nr));
    }

    [Fact]
    public void Credential_changes_stay_in_the_kernel_when_the_supervisor_acts_for_no_guest()
    {
        Assert.Equal(Allow, Evaluate(SyscallFamilies.ProcessAccess, X86_64, 105));
    }

    [Fact]
    public void Prctl_is_notified_for_PR_SET_SECCOMP_only()
    {
        Assert.Equal(Notify, Evaluate(SyscallFamilies.FileOpen, X86_64, 157, arg0: 22));
        Assert.Equal(Allow, Evaluate(SyscallFamilies.FileOpen, X86_64, 157, arg0: 15 /* PR_SET_NAME */));
    }

    [Fact]
    public void Mount_calls_run_in_the_kernel_when_files_are_mediated()
    {
        Assert.Equal(Allow, Evaluate(SyscallFamilies.FileOpen, X86_64, 165));
    }

    [Fact]
    public void Plain_clone_is_allowed_when_lifetime_is_not_subscribed()
    {
        Assert.Equal(Allow, Evaluate(SyscallFamilies.FileOpen, X86_64, 56, arg0: 17));
    }

    [Fact]
    public void Clone_goes_to_the_supervisor_when_lifetime_is_subscribed()
    {
        Assert.Equal(Notify, Evaluate(SyscallFamilies.ProcessLifetime, X86_64, 56, arg0: 0x01200011));
    }

    [Fact]
    public void Exits_alone_notify_exit_and_exit_group_and_let_fork_and_clone_run()
    {
        Assert.Equal(Notify, Evaluate(SyscallFamilies.ProcessExits, X86_64, 231));
        Assert.Equal(Notify, Evaluate(SyscallFamilies.ProcessExits, X86_64, 60));
        Assert.Equal(Allow, Evaluate(SyscallFamilies.ProcessExits, X86_64, 57));
        Assert.Equal(Allow, Evaluate(SyscallFamilies.ProcessExits, X86_64, 56, arg0: 0x01200011));
    }

    [Fact]
    public void Sendto_without_a_destination_is_not_mediated()
    {
        Assert.Equal(Allow, Evaluate(SyscallFamilies.Network, X86_64, 44, arg4: 0));
    }

    [Fact]
    public void Sendto_with_a_destination_goes_to_the_supervisor()
    {
        Assert.Equal(Notify, Evaluate(SyscallFamilies.Network, X86_64, 44, arg4: 0x7fff_0000_1000));
    }

    [Fact]
    public void The_kernel_boundary_alone_notifies_opens_signals_and_connect()
    {
        Assert.Equal(Notify, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 257 /* openat */));
        Assert.Equal(Notify, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 62 /* kill */));
        Assert.Equal(Notify, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 42 /* connect */));
        Assert.Equal(Notify, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 298 /* perf_event_open */));
    }

    [Fact]
    public void The_kernel_boundary_lets_ordinary_calls_run_in_the_kernel()
    {
        Assert.Equal(Allow, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 0 /* read */));
        Assert.Equal(Allow, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 3 /* close */));
        Assert.Equal(Allow, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 57 /* fork */));
    }

    [Fact]
    public void Fcntl_leaves_the_kernel_only_to_set_a_descriptors_signal_owner()
    {
        Assert.Equal(Notify, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 72, arg1: 8 /* F_SETOWN */));
        Assert.Equal(Notify, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 72, arg1: 15 /* F_SETOWN_EX */));
        Assert.Equal(Allow, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 72, arg1: 3 /* F_GETFL */));
        Assert.Equal(Allow, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 72, arg1: 10 /* F_SETSIG */));
    }

    [Fact]
    public void Ioctl_leaves_the_kernel_only_to_set_a_descriptors_signal_owner()
    {
        Assert.Equal(Notify, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 16, arg1: 0x8901 /* FIOSETOWN */));
        Assert.Equal(Notify, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 16, arg1: 0x8902 /* SIOCSPGRP */));
        Assert.Equal(Allow, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 16, arg1: 0x5401 /* TCGETS */));
    }

    [Fact]
    public void A_userfaultfd_for_faults_of_kernel_mode_is_refused_with_EPERM_and_one_for_user_mode_is_allowed()
    {
        Assert.Equal(Eperm, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 323, arg0: 0x80000 /* O_CLOEXEC */));
        Assert.Equal(Allow, Evaluate(SyscallFamilies.KernelBoundary, X86_64, 323, arg0: 0x80000 | 1 /* UFFD_USER_MODE_ONLY */));
    }

    [Fact]
    public void Every_family_together_still_fits_the_filters_jump_range()
    {
        Assert.Equal(Notify, Evaluate(SyscallFamilies.All, X86_64, 56, arg0: 17));
        Assert.Equal(Allow, Evaluate(SyscallFamilies.All, X86_64, 44, arg4: 0));
    }

    [Theory]
    [InlineData(0x5 /* PROT_READ|PROT_EXEC */, 0x2 /* MAP_PRIVATE */, 3UL, Notify)]
    [InlineData(0x1 /* PROT_READ */, 0x2, 3UL, Allow)]
    [InlineData(0x7, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, 3UL, Allow)]
    [InlineData(0x5, 0x2, 0xFFFF_FFFFUL /* fd -1 */, Allow)]
    [InlineData(0x5, 0x2, 0xFFFF_FFFF_FFFF_FFFFUL /* fd -1, sign-extended */, Allow)]
    public void Mmap_goes_to_the_supervisor_only_to_map_a_file_executable(ulong prot, ulong flags, ulong fd, uint expected)
    {
        Assert.Equal(expected, Evaluate(SyscallFamilies.All, X86_64, 9, arg2: prot, arg3: flags, arg4: fd));
    }

    [Theory]
    [InlineData(10U /* mprotect */)]
    [InlineData(329U /* pkey_mprotect */)]
    public void Mprotect_goes_to_the_supervisor_only_when_it_adds_PROT_EXEC(uint nr)
    {
        Assert.Equal(Notify, Evaluate(SyscallFamilies.ImageMappings, X86_64, nr, arg2: 0x5));
        Assert.Equal(Allow, Evaluate(SyscallFamilies.ImageMappings, X86_64, nr, arg2: 0x3));
        Assert.Equal(Allow, Evaluate(SyscallFamilies.All & ~SyscallFamilies.ImageMappings, X86_64, nr, arg2: 0x5));
    }

    private static uint Evaluate(SyscallFamilies families, uint arch, uint nr, ulong arg0 = 0, ulong arg4 = 0, ulong arg1 = 0, ulong arg2 = 0, ulong arg3 = 0)
    {
        SockFilter[] program = FilterBuilder.Build(families);
        Span<byte> data = stackalloc byte[64];
        BitConverter.TryWriteBytes(data, nr);
        BitConverter.TryWriteBytes(data[4..], arch);
        BitConverter.TryWriteBytes(data[16..], arg0);
        BitConverter.TryWriteBytes(data[24..], arg1);
        BitConverter.TryWriteBytes(data[32..], arg2);
        BitConverter.TryWriteBytes(data[40..], arg3);
        BitConverter.TryWriteBytes(data[48..], arg4);
        uint accumulator = 0;
        for (int pc = 0; pc < program.Length; pc++)
        {
            var instruction = program[pc];
            switch (instruction.Code)
            {
                case 0x20:
                    accumulator = BitConverter.ToUInt32(data[(int)instruction.K..]);
                    break;
                case 0x15:
                    pc += accumulator == instruction.K ? instruction.JumpTrue : instruction.JumpFalse;
                    break;
                case 0x45:
                    pc += (accumulator & instruction.K) != 0 ? instruction.JumpTrue : instruction.JumpFalse;
                    break;
                case 0x06:
                    return instruction.K;
                default:
                    throw new InvalidOperationException($"unexpected BPF opcode {instruction.Code:x}");
            }
        }

        throw new InvalidOperationException("the program fell off its end");
    }
}
