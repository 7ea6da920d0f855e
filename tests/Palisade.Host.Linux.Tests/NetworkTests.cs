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
    }

    [Fact]
    public async Task Connect_decision_sees_the_local_port_the_connection_then_has()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var peerPort = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            return ((IPEndPoint)client.Client.RemoteEndPoint!).Port;
        });
        var mediator = new RecordingMediator(SyscallFamilies.Network);

        int status = _guest.Shell(mediator, Python($"s = socket.socket()\ns.connect(('127.0.0.1', {port}))\nprint(s.getsockname()[1])"));

        Assert.Equal(0, status);
        int local = await peerPort;
        Assert.Equal(local.ToString(System.Globalization.CultureInfo.InvariantCulture), Output());
        Assert.Contains($"Connect family=2 local={local} remote={port}", mediator.Events);
        Assert.Contains($"flow Connect local={local} remote={port}", mediator.Events);
    }

    [Fact]
    public void A_refused_connect_releases_the_port_it_was_decided_with()
    {
        var mediator = new RecordingMediator(SyscallFamilies.Network) { DenyNetwork = (op, _, remote) => op == NetworkOperation.Connect && remote == 47124 };

        // As after a connect Linux fails: the port is free again (another socket can bind it).
        int status = _guest.Shell(mediator, Python(
            "s = socket.socket()\ntry:\n    s.connect(('127.0.0.1', 47124))\nexcept OSError as e:\n    other = socket.socket(); other.bind(('0.0.0.0', s.getsockname()[1])); print(e.errno, 'free')"));

        Assert.Equal(0, status);
        Assert.Equal("13 free", Output());
        Assert.Contains(mediator.Events, e => e.StartsWith("Connect family=2 local=", StringComparison.Ordinal) && !e.Contains("local=0 ", StringComparison.Ordinal));
    }

    [Fact]
    public void A_program_that_defers_its_port_to_the_connect_is_decided_without_one()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var mediator = new RecordingMediator(SyscallFamilies.Network);

        // IP_BIND_ADDRESS_NO_PORT (24): the port is chosen at connect, where Linux may share it across destinations.
        int status = _guest.Shell(mediator, Python($"s = socket.socket()\ns.setsockopt(socket.IPPROTO_IP, 24, 1)\ns.bind(('127.0.0.1', 0))\ns.connect(('127.0.0.1', {port}))\nprint('connected')"));

        Assert.Equal(0, status);
        Assert.Equal("connected", Output());
        Assert.Contains($"Connect family=2 local=0 remote={port}", mediator.Events);
    }

    [Fact]
    public void An_accept_denied_for_one_peer_resets_it_and_the_guest_gets_the_next_with_its_address()
    {
        // Fixed client ports (the decision is on the peer's port), above Linux's ephemeral range (32768-60999) so that no
        // other socket can be given them; SO_REUSEADDR lets a run bind them while an earlier run's connection on the same
        // address waits in TIME_WAIT.
        var mediator = new RecordingMediator(SyscallFamilies.Network)
        {
            MediateAccept = true,
            DenyNetwork = (op, _, remote) => op == NetworkOperation.Accept && remote == 61125,
        };

        int status = _guest.Shell(mediator, Python(
            "import os\nsrv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(4); port = srv.getsockname()[1]\n"
            + "def client(address):\n    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); c.bind(address); c.connect(('127.0.0.1', port)); return c\n"
            + "denied = client(('127.0.0.2', 61125))\n"
            + "allowed = client(('127.0.0.3', 61126))\n"
            + "conn, peer = srv.accept()\n"
            + "denied.settimeout(5)\ntry:\n    denied.recv(1); reset = 'no'\nexcept ConnectionResetError:\n    reset = 'reset'\n"
            + "print(peer[0], peer[1], reset, os.get_inheritable(conn.fileno()), conn.getpeername() == allowed.getsockname())"));

        Assert.Equal(0, status);
        Assert.Equal("127.0.0.3 61126 reset False True", Output());
        Assert.Contains(mediator.Events, e => e.StartsWith("flow Accept local=", StringComparison.Ordinal) && e.EndsWith("remote=61126", StringComparison.Ordinal));
    }

    [Fact]
    public void A_non_blocking_accept_whose_only_connection_is_denied_fails_with_EAGAIN()
    {
        var mediator = new RecordingMediator(SyscallFamilies.Network) { MediateAccept = true, DenyNetwork = (op, _, _) => op == NetworkOperation.Accept };

        int status = _guest.Shell(mediator, Python(
            "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(4)\n"
            + "c = socket.socket(); c.connect(srv.getsockname()); srv.setblocking(False)\n"
            + "try:\n    srv.accept(); print('accepted')\nexcept BlockingIOError as e:\n    print(e.errno)"));

        Assert.Equal(0, status);
        Assert.Equal("11", Output());
    }

    [Fact]
    public void Bind_decision_sees_the_requested_port_and_a_denied_bind_fails()
    {
        var mediator = new RecordingMediator(SyscallFamilies.Network) { DenyNetwork = (op, local, _) => op == NetworkOperation.Bind && local == 61123 };

        int status = _guest.Shell(mediator, Python("s = socket.socket()\ntry:\n    s.bind(('127.0.0.1', 61123)); print('bound')\nexcept OSError as e:\n    print(e.errno)"));

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
