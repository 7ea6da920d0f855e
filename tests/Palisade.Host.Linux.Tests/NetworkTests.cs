using System.Net;
using System.Net.Sockets;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;
using Palisade.Host.Linux.Filtering;

namespace Palisade.Host.Linux.Tests;

public sealed class NetworkTests : IDisposable
{
    private readonly Guest _guest = new();

    [Fact]
    public void Denied_connect_fails_with_EACCES()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var mediator = new RecordingMediator(SyscallFamilies.Network) { DenyNetwork = (op, _, remote) => op == NetworkOperation.Connect && remote == port };

        int status = _guest.Shell(mediator, Python($"s = socket.socket()\ntry:\n    s.connect(('127.0.0.1', {port})); print('connected')\nexcept OSError as e:\n    print(e.errno)"));

        Assert.Equal(0, status);
        Assert.Equal("13", Output());
    }

    [Fact]
    public async Task Allowed_connect_reaches_the_listener_on_the_guest_socket()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var accepted = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            using var reader = new StreamReader(client.GetStream());
            return await reader.ReadToEndAsync();
        });
        var mediator = new RecordingMediator(SyscallFamilies.Network);

        int status = _guest.Shell(mediator, Python($"s = socket.socket()\ns.connect(('127.0.0.1', {port}))\ns.sendall(b'over the mediated socket')\ns.close()\nprint('sent')"));

        Assert.Equal(0, status);
        Assert.Equal("over the mediated socket", await accepted);
        Assert.Contains($"Connect family=2 local=0 remote={port}", mediator.Events);
    }

    [Fact]
    public void Bind_decision_sees_the_requested_port_and_a_denied_bind_fails()
    {
        var mediator = new RecordingMediator(SyscallFamilies.Network) { DenyNetwork = (op, local, _) => op == NetworkOperation.Bind && local == 47123 };

        int status = _guest.Shell(mediator, Python("s = socket.socket()\ntry:\n    s.bind(('127.0.0.1', 47123)); print('bound')\nexcept OSError as e:\n    print(e.errno)"));

        Assert.Equal(0, status);
        Assert.Equal("13", Output());
    }

    [Fact]
    public void Relative_unix_socket_bind_lands_in_the_guest_cwd()
    {
        var mediator = new RecordingMediator(SyscallFamilies.Network);

        int status = _guest.Shell(mediator, Python("s = socket.socket(socket.AF_UNIX)\ns.bind('here.sock')\ns.listen(1)\nprint('ok')"));

        Assert.Equal(0, status);
        Assert.True(File.Exists(_guest.PathOf("here.sock")));
    }

    public void Dispose() => _guest.Dispose();

    private static string Python(string body) =>
        $"python3 -c \"$(printf '%s\\n' 'import socket' '{body.Replace("'", "'\"'\"'", StringComparison.Ordinal).Replace("\n", "' '", StringComparison.Ordinal)}')\" > out.txt";

    private string Output() => File.ReadAllText(_guest.PathOf("out.txt")).Trim();
}
