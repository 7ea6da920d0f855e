using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using Palisade.Api;
using Palisade.Host.Linux.Filtering;
using Palisade.Interop;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// The one place where what the supervisor decoded from a Linux system call (flags, sockaddr bytes, UTF-8 paths,
/// signal and ptrace rights) becomes what the kernel's hosting surface asks for (access rights, dispositions,
/// addresses, strings). Pure functions, apart from the per-thread cache of the last open path.
/// </summary>
internal static class RequestDecoder
{
    private const int LastOpenPathLimit = 512;

    [ThreadStatic]
    private static byte[]? t_lastOpenBytes;

    [ThreadStatic]
    private static string? t_lastOpenPath;

    /// <summary>A path or text as a string.</summary>
    public static string Utf8(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);

    /// <summary>
    /// The path of an open as a string. Programs open the same paths again and again, so the last one decoded on this
    /// thread is kept with its bytes and reused when the bytes match: a repeated open decodes and allocates nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static string OpenPath(ReadOnlySpan<byte> bytes)
    {
        byte[]? last = t_lastOpenBytes;
        if (last is not null && bytes.SequenceEqual(last) && t_lastOpenPath is { } cached)
        {
            return cached;
        }

        string path = Utf8(bytes);
        if (bytes.Length <= LastOpenPathLimit)
        {
            t_lastOpenBytes = bytes.ToArray();
            t_lastOpenPath = path;
        }

        return path;
    }

    /// <summary>The kernel's open request for a decoded open.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static OpenRequest Open(in OpenCall call) => new()
    {
        RequestedPath = OpenPath(call.Path),
        Facts = call.Facts,
        Access = AccessOf(call.Flags),
        Disposition = DispositionOf(call.Flags),
        OpenFlags = call.Flags,
    };

    /// <summary>The access an open asks for: none for O_PATH, else its access mode, with append for O_APPEND.</summary>
    public static FileAccessRights AccessOf(int flags)
    {
        if ((flags & Libc.O_PATH) != 0)
        {
            return FileAccessRights.None;
        }

        FileAccessRights a = (flags & Libc.O_ACCMODE) switch
        {
            Libc.O_RDONLY => FileAccessRights.Read,
            Libc.O_WRONLY => FileAccessRights.Write,
            _ => FileAccessRights.Read | FileAccessRights.Write,
        };
        return (flags & Libc.O_APPEND) != 0 ? a | FileAccessRights.Append : a;
    }

    /// <summary>What an open does with an existing or missing file, from O_CREAT, O_EXCL and O_TRUNC.</summary>
    public static CreateDisposition DispositionOf(int flags)
    {
        bool create = (flags & Libc.O_CREAT) != 0, exclusive = (flags & Libc.O_EXCL) != 0, truncate = (flags & Libc.O_TRUNC) != 0;
        return (create, exclusive, truncate) switch
        {
            (true, true, _) => CreateDisposition.Create,
            (true, false, true) => CreateDisposition.OverwriteIf,
            (true, false, false) => CreateDisposition.OpenIf,
            (false, _, true) => CreateDisposition.Overwrite,
            _ => CreateDisposition.Open,
        };
    }

    /// <summary>The kernel's request for a decoded change of a file system object (see <see cref="PathOperationKind"/>).</summary>
    public static PathOperationRequest PathOperation(in PathOperationCall call) => new()
    {
        Kind = call.Kind switch
        {
            PathOperationKind.Rename => FileOperationKind.Rename,
            PathOperationKind.Unlink or PathOperationKind.RemoveDirectory => FileOperationKind.Delete,
            PathOperationKind.MakeDirectory or PathOperationKind.MakeNode or PathOperationKind.MakeSymbolicLink => FileOperationKind.Create,
            _ => FileOperationKind.SetInformation,
        },
        RequestedPath = call.OnDescriptor ? null : Utf8(call.Path),
        RequestedNewPath = call.Kind is PathOperationKind.Rename or PathOperationKind.Link ? Utf8(call.NewPath) : null,
        Facts = call.Facts,
        Flags = (int)call.Flags,
        IsDirectory = call.Kind == PathOperationKind.RemoveDirectory,
        InformationClass = call.Kind switch
        {
            PathOperationKind.Truncate => FileInformationClass.Size,
            PathOperationKind.ChangeMode => FileInformationClass.Mode,
            PathOperationKind.ChangeOwner => FileInformationClass.Owner,
            PathOperationKind.ChangeTimes => FileInformationClass.Times,
            PathOperationKind.Allocate => FileInformationClass.Allocation,
            PathOperationKind.SetAttribute or PathOperationKind.RemoveAttribute => FileInformationClass.ExtendedAttributes,
            PathOperationKind.Link => FileInformationClass.Link,
            _ => FileInformationClass.None,
        },
        InformationValue = call.Kind switch
        {
            PathOperationKind.Truncate => call.Length,
            PathOperationKind.ChangeMode or PathOperationKind.Allocate => call.Mode,
            PathOperationKind.ChangeOwner => (long)((ulong)call.Group << 32 | call.Owner),
            PathOperationKind.RemoveAttribute => 1,
            _ => 0,
        },
        AttributeName = call.Kind is PathOperationKind.SetAttribute or PathOperationKind.RemoveAttribute ? Utf8(call.AttributeName) : null,
        Offset = call.Offset,
        Length = call.Kind == PathOperationKind.Allocate ? (int)Math.Clamp(call.Length, 0, int.MaxValue) : 0,
    };

    /// <summary>The image an exec runs: the canonical path the supervisor resolved, or the path as named when there is none.</summary>
    public static ProcessImageRequest Image(in ExecCall call, int parentProcessId)
    {
        string image = call.ImagePath.IsEmpty ? Utf8(call.Path) : Utf8(call.ImagePath);
        return new ProcessImageRequest
        {
            ParentProcessId = parentProcessId,
            ImagePath = image,
            CommandLine = call.CommandLine.IsEmpty ? KernelHost.CommandLineOf(call.Arguments, image) : Utf8(call.CommandLine),
            Arguments = call.Arguments,
            EnvironmentVariables = call.EnvironmentVariables,
            WorkingDirectory = call.WorkingDirectory,
            Image = new FileIdentity(call.Image.Device, call.Image.Inode),
            Images = call.Images,
        };
    }

    /// <summary>True for the families the network filter engine sees (IPv4 and IPv6; local sockets are not network traffic).</summary>
    public static bool IsInternet(int family) => family is Libc.AF_INET or Libc.AF_INET6;

    /// <summary>The kernel's network request for a decoded socket call of an internet family.</summary>
    public static NetworkRequest Network(in NetworkCall call, string applicationPath) => new()
    {
        Operation = call.Operation,
        IsIPv6 = call.Family == Libc.AF_INET6,
        Protocol = ProtocolOf(call.Protocol, call.SocketType),
        LocalAddress = AddressOf(call.LocalAddress),
        LocalPort = call.LocalPort,
        RemoteAddress = AddressOf(call.RemoteAddress),
        RemotePort = call.RemotePort,
        ApplicationPath = applicationPath,
    };

    /// <summary>TCP or UDP from the protocol, or from the socket type when the protocol is 0 (the default).</summary>
    public static NetworkProtocol ProtocolOf(int protocol, int socketType) => protocol switch
    {
        Libc.IPPROTO_TCP => NetworkProtocol.Tcp,
        Libc.IPPROTO_UDP => NetworkProtocol.Udp,
        0 when (socketType & Libc.SOCK_TYPE_MASK) == Libc.SOCK_STREAM => NetworkProtocol.Tcp,
        0 when (socketType & Libc.SOCK_TYPE_MASK) == Libc.SOCK_DGRAM => NetworkProtocol.Udp,
        _ => NetworkProtocol.Other,
    };

    /// <summary>The address of a sockaddr_in or sockaddr_in6 (family in host order first), or null for anything else.</summary>
    public static IPAddress? AddressOf(ReadOnlySpan<byte> sockaddr)
    {
        if (sockaddr.Length >= 8 && sockaddr[0] == Libc.AF_INET && sockaddr[1] == 0)
        {
            return new IPAddress(sockaddr.Slice(4, 4));
        }

        if (sockaddr.Length >= 24 && sockaddr[0] == Libc.AF_INET6 && sockaddr[1] == 0)
        {
            return new IPAddress(sockaddr.Slice(8, 16));
        }

        return null;
    }

    /// <summary>Which guest operation a process access is, as object callbacks are told
    /// (<see cref="ObjectPreOperationInfo.AccessKind"/>).</summary>
    public static ObjectAccessKind AccessKindOf(int systemCall) => systemCall switch
    {
        Sys.Kill => ObjectAccessKind.Signal,
        Sys.Tkill or Sys.Tgkill => ObjectAccessKind.ThreadSignal,
        Sys.PidfdSendSignal => ObjectAccessKind.PidfdSignal,
        Sys.PidfdOpen => ObjectAccessKind.PidfdOpen,
        Sys.PidfdGetfd => ObjectAccessKind.PidfdGetfd,
        Sys.Ptrace => ObjectAccessKind.Ptrace,
        Sys.ProcessVmReadv => ObjectAccessKind.ProcessVmRead,
        Sys.ProcessVmWritev => ObjectAccessKind.ProcessVmWrite,
        _ => ObjectAccessKind.Unspecified,
    };

    /// <summary>The object-callback rights a process access needs.</summary>
    public static ProcessAccessRights AccessRightsOf(ProcessRights r)
    {
        ProcessAccessRights rights = ProcessAccessRights.None;
        if ((r & (ProcessRights.Signal | ProcessRights.Terminate)) != 0)
        {
            rights |= ProcessAccessRights.Terminate;
        }

        if ((r & ProcessRights.ReadMemory) != 0)
        {
            rights |= ProcessAccessRights.VmRead;
        }

        if ((r & ProcessRights.WriteMemory) != 0)
        {
            rights |= ProcessAccessRights.VmWrite;
        }

        if ((r & ProcessRights.Debug) != 0)
        {
            rights |= ProcessAccessRights.VmRead | ProcessAccessRights.VmWrite | ProcessAccessRights.SuspendResume;
        }

        if ((r & ProcessRights.OpenHandle) != 0)
        {
            rights |= ProcessAccessRights.Synchronize;
        }

        if ((r & ProcessRights.DuplicateHandle) != 0)
        {
            rights |= ProcessAccessRights.DuplicateHandle;
        }

        return rights;
    }

    /// <summary>
    /// The seccomp families that serve each of the kernel's interests. Process exits need exit and exit_group only: the
    /// kernel decides nothing at fork or clone (a process is decided at exec), so those run natively, and the exit
    /// watcher reports the ends no system call announces.
    /// </summary>
    private static readonly (HostInterests Interest, SyscallFamilies Families)[] FamiliesOfInterest =
    [
        (HostInterests.FileOpen, SyscallFamilies.FileOpen | SyscallFamilies.CreateNames | SyscallFamilies.Exec),
        (HostInterests.FileOpenCompletion, SyscallFamilies.FileOpenPost),
        (HostInterests.PathOperations, SyscallFamilies.PathOperations),
        (HostInterests.FileCleanup, SyscallFamilies.FileClose),
        (HostInterests.ProcessCreation, SyscallFamilies.Exec),
        (HostInterests.Network, SyscallFamilies.Network),
        (HostInterests.ProcessAccess, SyscallFamilies.ProcessAccess),
        (HostInterests.ProcessExits, SyscallFamilies.ProcessExits),
        (HostInterests.ImageMappings, SyscallFamilies.ImageMappings),
    ];

    /// <summary>The seccomp families that serve the kernel's interests.</summary>
    public static SyscallFamilies FamiliesOf(HostInterests interests)
    {
        SyscallFamilies f = SyscallFamilies.None;
        foreach ((HostInterests interest, SyscallFamilies families) in FamiliesOfInterest)
        {
            if ((interests & interest) != 0)
            {
                f |= families;
            }
        }

        return f;
    }
}
