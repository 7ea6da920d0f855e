using System.Net;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Mediation;
using Palisade.Host.Linux.Filtering;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>The one place that turns decoded Linux arguments into the kernel's requests.</summary>
public sealed class RequestDecoderTests
{
    [Theory]
    [InlineData(Libc.O_RDONLY, FileAccessRights.Read)]
    [InlineData(Libc.O_WRONLY, FileAccessRights.Write)]
    [InlineData(Libc.O_RDWR, FileAccessRights.Read | FileAccessRights.Write)]
    [InlineData(Libc.O_WRONLY | Libc.O_APPEND, FileAccessRights.Write | FileAccessRights.Append)]
    [InlineData(Libc.O_PATH | Libc.O_RDWR, FileAccessRights.None)]
    public void Open_flags_give_the_access_asked_for(int flags, FileAccessRights access)
    {
        Assert.Equal(access, RequestDecoder.AccessOf(flags));
    }

    [Theory]
    [InlineData(0, CreateDisposition.Open)]
    [InlineData(Libc.O_CREAT, CreateDisposition.OpenIf)]
    [InlineData(Libc.O_CREAT | Libc.O_EXCL, CreateDisposition.Create)]
    [InlineData(Libc.O_CREAT | Libc.O_TRUNC, CreateDisposition.OverwriteIf)]
    [InlineData(Libc.O_TRUNC, CreateDisposition.Overwrite)]
    public void Open_flags_give_the_disposition(int flags, CreateDisposition disposition)
    {
        Assert.Equal(disposition, RequestDecoder.DispositionOf(flags));
    }

    [Fact]
    public void A_repeated_open_path_is_the_same_string()
    {
        string first = RequestDecoder.OpenPath("/etc/hostname"u8);

        Assert.Same(first, RequestDecoder.OpenPath("/etc/hostname"u8));
    }

    [Fact]
    public void A_chown_carries_group_and_owner_in_one_value()
    {
        var call = new PathOperationCall { Kind = PathOperationKind.ChangeOwner, Path = "/tmp/f"u8, Owner = 1000, Group = 100 };

        PathOperationRequest r = RequestDecoder.PathOperation(in call);

        Assert.Equal((FileOperationKind.SetInformation, FileInformationClass.Owner, (100L << 32) | 1000), (r.Kind, r.InformationClass, r.InformationValue));
    }

    [Fact]
    public void An_IPv6_sockaddr_gives_its_address()
    {
        byte[] sockaddr = new byte[28];
        sockaddr[0] = Libc.AF_INET6;
        IPAddress.IPv6Loopback.TryWriteBytes(sockaddr.AsSpan(8), out _);

        Assert.Equal(IPAddress.IPv6Loopback, RequestDecoder.AddressOf(sockaddr));
    }

    [Fact]
    public void A_datagram_socket_without_protocol_is_UDP()
    {
        Assert.Equal(NetworkProtocol.Udp, RequestDecoder.ProtocolOf(0, Libc.SOCK_DGRAM | Libc.SOCK_CLOEXEC));
    }

    [Fact]
    public void Open_interest_subscribes_the_open_family_its_post_decision_the_creates_of_names_and_exec()
    {
        Assert.Equal(SyscallFamilies.FileOpen | SyscallFamilies.FileOpenPost | SyscallFamilies.CreateNames | SyscallFamilies.Exec,
            RequestDecoder.FamiliesOf(HostInterests.FileOpen | HostInterests.FileOpenCompletion));
    }
}
