using System.Net;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>The socket family of the kernel mediator, against a real kernel's filter engine, with no guest running.</summary>
public sealed class NetworkMediatorTests : IDisposable
{
    private readonly TestKernel _k = new();
    private readonly Requester _requester = new(Environment.ProcessId, Environment.CurrentManagedThreadId);

    public void Dispose() => _k.Dispose();

    private void Block(NetworkLayer layer, int port) => _k.Start(c =>
    {
        c.Network.AddSublayer("fw", 100, out CallbackCookie sub);
        bool remote = layer is NetworkLayer.ConnectV4 or NetworkLayer.ConnectV6;
        return c.Network.AddFilter(new NetworkFilter
        {
            Name = "block",
            Layer = layer,
            Sublayer = sub,
            Action = NetworkAction.Block,
            Conditions = [remote ? NetworkCondition.RemotePort(port, port) : NetworkCondition.LocalPort(port, port)],
        }, out _);
    });

    private static byte[] SockaddrV4(int port)
    {
        byte[] s = new byte[16];
        s[0] = Libc.AF_INET;
        s[2] = (byte)(port >> 8);
        s[3] = (byte)port;
        IPAddress.Loopback.TryWriteBytes(s.AsSpan(4), out _);
        return s;
    }

    [Fact]
    public void Connect_a_filter_blocks_fails_with_EACCES()
    {
        Block(NetworkLayer.ConnectV4, 8081);
        var call = new NetworkCall { Operation = NetworkOperation.Connect, Family = Libc.AF_INET, SocketType = Libc.SOCK_STREAM, RemoteAddress = SockaddrV4(8081), RemotePort = 8081 };

        Assert.Equal(Errno.EACCES, new NetworkMediator(_k.Host).Decide(_requester, call));
    }

    [Fact]
    public void Connect_to_another_port_is_permitted()
    {
        Block(NetworkLayer.ConnectV4, 8081);
        var call = new NetworkCall { Operation = NetworkOperation.Connect, Family = Libc.AF_INET, SocketType = Libc.SOCK_STREAM, RemoteAddress = SockaddrV4(8082), RemotePort = 8082 };

        Assert.Equal(0, new NetworkMediator(_k.Host).Decide(_requester, call));
    }

    [Fact]
    public void Accept_a_filter_blocks_fails_with_ECONNABORTED()
    {
        Block(NetworkLayer.AcceptV4, 9000);
        var call = new NetworkCall { Operation = NetworkOperation.Accept, Family = Libc.AF_INET, SocketType = Libc.SOCK_STREAM, LocalAddress = SockaddrV4(9000), LocalPort = 9000 };

        Assert.Equal(Errno.ECONNABORTED, new NetworkMediator(_k.Host).Decide(_requester, call));
    }

    [Fact]
    public void Local_sockets_are_not_network_traffic()
    {
        Block(NetworkLayer.ConnectV4, 0);
        var call = new NetworkCall { Operation = NetworkOperation.Connect, Family = Libc.AF_UNIX, SocketType = Libc.SOCK_STREAM };

        Assert.Equal(0, new NetworkMediator(_k.Host).Decide(_requester, call));
    }
}
