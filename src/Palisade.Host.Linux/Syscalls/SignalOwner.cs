using System.Buffers.Binary;
using Palisade.Interop;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Filtering;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// fcntl F_SETOWN and F_SETOWN_EX, ioctl FIOSETOWN and SIOCSPGRP: who receives a descriptor's SIGIO (or whatever
/// signal F_SETSIG chose, SIGKILL included). Only these commands leave Linux (the filter checks the command register).
/// The kernel boundary refuses an owner that is the kernel's process, a thread of it or its process group (EPERM).
/// </summary>
/// <remarks>
/// F_SETOWN's owner is a register: decided as Linux will see it, then the call continues. The others read the owner from
/// guest memory, which another guest thread could change after the decision; so when the guest's credentials would let
/// that signal reach the kernel, the supervisor sets the owner itself, on its own copy of the descriptor (the same open
/// file), from the value it decided on. It does so only when its credentials are equivalent to the guest's for Linux's
/// SIGIO permission (which looks only at the owner's real and effective uid): the guest's effective uid is 0, or its
/// real and effective uids are the supervisor's. A guest whose credentials mix the two (a real uid of the kernel's
/// user, another effective uid) gets EPERM for these three commands; a guest whose credentials cannot signal the
/// kernel at all continues to Linux unchanged.
/// </remarks>
internal sealed unsafe partial class Supervisor
{
    private const int FOwnerTid = 0, FOwnerPid = 1, FOwnerProcessGroup = 2;

    private void HandleSignalOwner(in SeccompNotif n, Requester requester, Scratch s)
    {
        int tid = (int)n.Pid;
        uint command = (uint)n.Data.Args[1];
        bool fcntl = n.Data.Nr == Sys.Fcntl;
        if (_boundary is null || (fcntl && command == FilterBuilder.FcntlSetOwner))
        {
            ReplyOrContinue(n.Id, Boundary.KernelBoundary.DecideSignalOwner((int)n.Data.Args[2]));
            return;
        }

        bool extended = fcntl && command == FilterBuilder.FcntlSetOwnerEx;
        int got = GuestMemory.Read(tid, n.Data.Args[2], s.Small, extended ? 8 : 4);
        if (got < (extended ? 8 : 4))
        {
            Reply(n.Id, Errno.EFAULT);
            return;
        }

        int type = extended ? BinaryPrimitives.ReadInt32LittleEndian(s.Small) : FOwnerPid;
        int value = BinaryPrimitives.ReadInt32LittleEndian(s.Small.AsSpan(extended ? 4 : 0));
        if (extended && type is not (FOwnerTid or FOwnerPid or FOwnerProcessGroup))
        {
            Reply(n.Id, Errno.EINVAL);
            return;
        }

        int refusal = Boundary.KernelBoundary.DecideSignalOwner(type == FOwnerProcessGroup ? -value : value);
        if (refusal != 0)
        {
            Reply(n.Id, refusal);
            return;
        }

        switch (Boundary.KernelTasks.CredentialsAgainstKernel(tid, s.Proc2, s.Status))
        {
            case Boundary.SignalCredentials.CannotReachKernel:
                Continue(n.Id);
                return;
            case Boundary.SignalCredentials.Mixed:
                Reply(n.Id, Errno.EPERM);
                return;
        }

        int copy = TakeGuestFd(requester.ProcessId, (int)n.Data.Args[0]);
        if (copy < 0)
        {
            Reply(n.Id, -copy);
            return;
        }

        try
        {
            int result;
            if (extended)
            {
                long owner = ((long)(uint)value << 32) | (uint)type;
                result = Libc.Fcntl(copy, (int)FilterBuilder.FcntlSetOwnerEx, (long)&owner);
            }
            else
            {
                result = Libc.Ioctl(copy, command, &value);
            }

            Reply(n.Id, result < 0 ? Libc.LastError : 0);
        }
        finally
        {
            Libc.CloseOwned(copy);
        }
    }

    private void ReplyOrContinue(ulong id, int refusal)
    {
        if (refusal != 0)
        {
            Reply(id, refusal);
        }
        else
        {
            Continue(id);
        }
    }
}
