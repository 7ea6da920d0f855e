using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Security.Cryptography;
using Palisade.Api;
using Palisade.Kernel.Hosting;
using Palisade.Ports.Client;

namespace Palisade.Kernel.Tests.Ports;

/// <summary>
/// Communication ports through the real API and real sockets: a driver's port in a test kernel, and this test process
/// as the user-mode client (Palisade.Ports.Client, or a raw socket where the test is about the wire).
/// </summary>
public sealed class PortManagerTests : IDisposable
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);
    private readonly TestKernel _k = new();
    private readonly BlockingCollection<string> _told = [];
    private readonly List<PortClient> _clients = [];

    public void Dispose()
    {
        foreach (PortClient c in _clients)
        {
            c.Dispose();
        }

        _k.Dispose();
        _told.Dispose();
    }

    private PortCallbacks Telling(PortMessageCallback? message = null) => new()
    {
        Connect = (c, context) =>
        {
            _told.Add($"connect pid={c.ProcessId} uid={c.UserId} gid={c.GroupId} context={System.Text.Encoding.UTF8.GetString(context)}");
            return Status.Success;
        },
        Disconnect = c => _told.Add("disconnect " + c.Id),
        Message = message,
    };

    private IPort Create(PortOptions? options = null, PortCallbacks? callbacks = null, string name = "test")
    {
        IPort? port = null;
        _k.Start(c => c.Ports.CreatePort(name, options ?? new PortOptions { MaximumConnections = 4 }, callbacks ?? Telling(), out port));
        return port!;
    }

    private PortClient Connect(IPort port, byte[]? context = null, ECDsa? key = null)
    {
        PortClient c = PortClient.Connect(port.Path, context, key);
        _clients.Add(c);
        return c;
    }

    private string Told()
    {
        Assert.True(_told.TryTake(out string? what, Long), "the driver was told nothing");
        return what!;
    }

    private static PortException Refused(IPort port, ECDsa? key = null) =>
        Assert.Throws<PortException>(() => PortClient.Connect(port.Path, default, key).Dispose());

    [Fact]
    public void CreatePort_refuses_null_arguments_malformed_names_and_options_out_of_range()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        var ok = new PortOptions();
        var callbacks = new PortCallbacks();

        Assert.Equal(Status.InvalidParameter, c.Ports.CreatePort(null!, ok, callbacks, out _));
        Assert.Equal(Status.InvalidParameter, c.Ports.CreatePort("p", null!, callbacks, out _));
        Assert.Equal(Status.InvalidParameter, c.Ports.CreatePort("p", ok, null!, out _));
        Assert.Equal(Status.ObjectNameInvalid, c.Ports.CreatePort("", ok, callbacks, out _));
        Assert.Equal(Status.ObjectNameInvalid, c.Ports.CreatePort("../control.sock", ok, callbacks, out _));
        Assert.Equal(Status.ObjectNameInvalid, c.Ports.CreatePort(".hidden", ok, callbacks, out _));
        Assert.Equal(Status.ObjectNameInvalid, c.Ports.CreatePort(new string('a', 65), ok, callbacks, out _));
        Assert.Equal(Status.InvalidParameter, c.Ports.CreatePort("p", new PortOptions { MaximumConnections = 0 }, callbacks, out _));
        Assert.Equal(Status.InvalidParameter, c.Ports.CreatePort("p", new PortOptions { MaximumConnections = 257 }, callbacks, out _));
        Assert.Equal(Status.InvalidParameter, c.Ports.CreatePort("p", new PortOptions { AllowedUserIds = [.. Enumerable.Range(0, 65).Select(i => (uint)i)] }, callbacks, out _));
        Assert.Equal(Status.InvalidParameter, c.Ports.CreatePort("p", new PortOptions { ClientKey = [1, 2, 3] }, callbacks, out IPort? none));
        Assert.Null(none);
    }

    [Fact]
    public void A_key_on_another_curve_than_P256_is_refused()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);

        Assert.Equal(Status.InvalidParameter, c.Ports.CreatePort("p", new PortOptions { ClientKey = p384.ExportSubjectPublicKeyInfo() }, new PortCallbacks(), out _));
    }

    [Fact]
    public void A_second_port_of_the_same_name_collides()
    {
        Create();
        IDriverContext other = _k.Start(_ => Status.Success);

        Assert.Equal(Status.ObjectNameCollision, other.Ports.CreatePort("test", new PortOptions(), new PortCallbacks(), out _));
    }

    [Fact]
    public void The_socket_is_a_client_port_to_the_host_in_a_folder_of_the_kernels()
    {
        IPort port = Create();

        Assert.Equal(Path.Combine(_k.Home, "ports", "test"), port.Path);
        Assert.Equal(0, Palisade.Interop.Libc.FileIdentityOf(port.Path, out FileIdentity socket, out _));
        Assert.Equal(0, Palisade.Interop.Libc.FileIdentityOf(Path.GetDirectoryName(port.Path)!, out FileIdentity folder, out _));
        Assert.Equal(KernelFileKind.ClientPort, _k.Host.KernelFileKindOf(socket));
        Assert.Equal(KernelFileKind.Folder, _k.Host.KernelFileKindOf(folder));
    }

    [Fact]
    public void Connect_and_disconnect_are_told_with_the_clients_pid_uid_gid_and_context()
    {
        IPort port = Create();
        PortClient client = Connect(port, "hi"u8.ToArray());

        Assert.Equal($"connect pid={Environment.ProcessId} uid={Palisade.Interop.Libc.GetEUid()} gid={EffectiveGroupId()} context=hi", Told());
        Assert.Equal(client.ConnectionId, Assert.Single(port.Connections).Id);
        client.Dispose();
        Assert.Equal("disconnect " + client.ConnectionId, Told());
        Assert.Empty(port.Connections);
    }

    [Fact]
    public void A_clients_message_reaches_the_message_callback_and_its_reply_comes_back()
    {
        IPort port = Create(callbacks: Telling((IPortConnection _, ReadOnlySpan<byte> m, Span<byte> reply, out int length) =>
        {
            length = m.Length + 1;
            reply[0] = (byte)'>';
            m.CopyTo(reply[1..]);
            return Status.Success;
        }));
        PortClient client = Connect(port);

        PortReply r = client.Send("scan"u8, Long);

        Assert.Equal(0u, r.Status);
        Assert.Equal(">scan"u8.ToArray(), r.Data);
    }

    [Fact]
    public void A_port_without_a_message_callback_answers_NotSupported()
    {
        PortClient client = Connect(Create(callbacks: new PortCallbacks()));

        Assert.Equal((uint)Status.NotSupported.Code, client.Send("x"u8, Long).Status);
    }

    [Fact]
    public void A_message_callback_that_throws_answers_CallbackFaulted_and_the_connection_goes_on()
    {
        int calls = 0;
        PortClient client = Connect(Create(callbacks: Telling((IPortConnection _, ReadOnlySpan<byte> _, Span<byte> _, out int length) =>
        {
            length = 0;
            return ++calls == 1 ? throw new InvalidOperationException("on purpose") : Status.Success;
        })));

        Assert.Equal((uint)Status.CallbackFaulted.Code, client.Send("1"u8, Long).Status);
        Assert.Equal(0u, client.Send("2"u8, Long).Status);
    }

    [Fact]
    public void The_drivers_send_returns_the_clients_reply()
    {
        IPort port = Create();
        PortClient client = Connect(port);
        Told();
        using var answering = new BackgroundCall<bool>(() =>
        {
            PortMessage m = client.Receive()!;
            client.Reply(m.Id, [.. "re:"u8, .. m.Data]);
            return m.WantsReply;
        });

        byte[] reply = new byte[16];
        Status s = port.Connections[0].Send("ping"u8, reply, out int length, Long);

        Assert.Equal(Status.Success, s);
        Assert.Equal("re:ping"u8.ToArray(), reply.AsSpan(0, length).ToArray());
        Assert.True(answering.Wait(Long));
        Assert.True(answering.Result);
    }

    [Fact]
    public void A_reply_longer_than_the_drivers_buffer_is_BufferTooSmall_with_its_length_and_first_bytes()
    {
        IPort port = Create();
        PortClient client = Connect(port);
        Told();
        using var answering = Answering(client, "0123456789"u8.ToArray(), 0);

        byte[] reply = new byte[4];
        Status s = port.Connections[0].Send("x"u8, reply, out int length, Long);

        Assert.Equal(Status.BufferTooSmall, s);
        Assert.Equal(10, length);
        Assert.Equal("0123"u8.ToArray(), reply);
        Assert.True(answering.Wait(Long));
        Assert.True(answering.Result);
    }

    [Fact]
    public void The_clients_error_status_in_its_reply_is_what_the_drivers_send_returns()
    {
        IPort port = Create();
        PortClient client = Connect(port);
        Told();
        using var answering = Answering(client, [], Status.AccessDenied.Code);

        Assert.Equal(Status.AccessDenied, port.Connections[0].Send("x"u8, new byte[1], out _, Long));
        Assert.True(answering.Wait(Long));
        Assert.True(answering.Result);
    }

    [Fact]
    public void A_send_whose_reply_never_comes_times_out()
    {
        IPort port = Create();
        Connect(port);
        Told();

        Assert.Equal(Status.IoTimeout, port.Connections[0].Send("x"u8, new byte[1], out int length, TimeSpan.FromMilliseconds(50)));
        Assert.Equal(0, length);
    }

    [Fact]
    public void A_client_that_does_not_read_makes_sends_time_out_instead_of_blocking()
    {
        IPort port = Create();
        var raw = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            Handshake(raw, port.Path);
            Told();
            IPortConnection c = port.Connections[0];
            byte[] big = new byte[PortOptions.MaximumMessageSize];
            Status s = Status.Success;
            for (int i = 0; i < 10_000 && s.IsSuccess; i++)
            {
                s = c.Send(big, TimeSpan.Zero);
            }

            Assert.Equal(Status.IoTimeout, s);
        }
        finally
        {
            raw.Dispose();
        }
    }

    [Fact]
    public void Owed_replies_are_bounded_and_the_sends_waiting_for_them_are_cancelled_when_the_client_goes()
    {
        IPort port = Create();
        PortClient client = Connect(port);
        Told();
        IPortConnection c = port.Connections[0];
        BackgroundCall<Status>[] waiting = [.. Enumerable.Range(0, PortOptions.MaximumPendingReplyLimit)
            .Select(_ => new BackgroundCall<Status>(() => c.Send("x"u8, new byte[1], out _, Long)))];
        for (int i = 0; i < waiting.Length; i++)
        {
            Assert.NotNull(client.Receive()); // Each message is out: its reply is owed.
        }

        Assert.Equal(Status.InsufficientResources, c.Send("one more"u8, new byte[1], out _, Long));
        client.Dispose();
        Assert.All(waiting, w =>
        {
            Assert.True(w.Wait(Long));
            Assert.Equal(Status.Cancelled, w.Result);
            w.Dispose();
        });
    }

    [Fact]
    public void Waiting_for_a_reply_inside_the_connections_own_callback_is_NotSupported()
    {
        Status inside = Status.Success;
        PortClient client = Connect(Create(callbacks: Telling((IPortConnection c, ReadOnlySpan<byte> _, Span<byte> _, out int length) =>
        {
            length = 0;
            inside = c.Send("x"u8, new byte[1], out _, Long);
            return Status.Success;
        })));

        client.Send("go"u8, Long);

        Assert.Equal(Status.NotSupported, inside);
    }

    [Fact]
    public void Sends_check_their_arguments()
    {
        IPort port = Create();
        Connect(port);
        Told();
        IPortConnection c = port.Connections[0];

        Assert.Equal(Status.InvalidParameter, c.Send(new byte[PortOptions.MaximumMessageSize + 1], TimeSpan.Zero));
        Assert.Equal(Status.InvalidParameter, c.Send("x"u8, TimeSpan.FromMinutes(6)));
        Assert.Equal(Status.InvalidParameter, c.Send("x"u8, new byte[1], out _, TimeSpan.Zero));
        Assert.Equal(Status.InvalidParameter, c.Send("x"u8, new byte[1], out _, TimeSpan.FromSeconds(-1)));
    }

    [Fact]
    public void A_closed_connection_refuses_sends_with_InvalidDeviceState_and_is_told_once()
    {
        IPort port = Create();
        PortClient client = Connect(port);
        Told();
        IPortConnection c = port.Connections[0];

        Assert.Equal(Status.Success, c.Close());
        Assert.Equal("disconnect " + c.Id, Told());
        Assert.False(c.IsConnected);
        Assert.Equal(Status.InvalidDeviceState, c.Send("x"u8, TimeSpan.Zero));
        Assert.Equal(Status.InvalidDeviceState, c.Close());
        Assert.Null(client.Receive());
    }

    [Fact]
    public void A_user_the_policy_does_not_list_is_refused_with_AccessDenied_before_the_driver_hears_of_it()
    {
        IPort port = Create(new PortOptions { AllowedUserIds = [Palisade.Interop.Libc.GetEUid() + 1] });

        Assert.Equal(Status.AccessDenied.Code, Refused(port).Status);
        Assert.Empty(_told);
    }

    [Fact]
    public void A_group_the_policy_lists_admits_a_user_it_does_not()
    {
        IPort port = Create(new PortOptions { AllowedUserIds = [Palisade.Interop.Libc.GetEUid() + 1], AllowedGroupIds = [EffectiveGroupId()] });

        Connect(port);

        Assert.StartsWith("connect ", Told(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_client_beyond_the_connection_limit_is_refused_with_InsufficientResources_and_admitted_once_one_leaves()
    {
        IPort port = Create(new PortOptions { MaximumConnections = 1 });
        PortClient first = Connect(port);
        Told();

        Assert.Equal(Status.InsufficientResources.Code, Refused(port).Status);
        first.Dispose();
        Told();
        Connect(port);
        Assert.StartsWith("connect ", Told(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_connect_callbacks_error_is_the_status_the_client_is_refused_with()
    {
        IPort port = Create(callbacks: new PortCallbacks { Connect = (_, _) => Status.ConnectionRefused });

        Assert.Equal(Status.ConnectionRefused.Code, Refused(port).Status);
        Assert.Empty(port.Connections);
    }

    [Fact]
    public void A_signed_port_admits_the_holder_of_its_key_and_refuses_another_key_and_no_key()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        IPort port = Create(new PortOptions { ClientKey = key.ExportSubjectPublicKeyInfo() });

        Assert.Equal(Status.AccessDenied.Code, Refused(port, other).Status);
        Assert.Equal(0u, Refused(port).Status); // The client library refuses to go on unsigned.
        Connect(port, key: key);
        Assert.StartsWith("connect ", Told(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_malformed_record_ends_its_connection_and_the_port_keeps_serving()
    {
        IPort port = Create();
        using (var raw = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified))
        {
            Handshake(raw, port.Path);
            Told();
            raw.Send([99, 0, 0, 0]);
            Assert.Equal(0, raw.Receive(new byte[64])); // The kernel closed it.
        }

        Assert.StartsWith("disconnect ", Told(), StringComparison.Ordinal);
        Connect(port);
        Assert.StartsWith("connect ", Told(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_closed_port_removes_its_socket_and_accepted_connections_stay()
    {
        IPort port = Create();
        PortClient client = Connect(port);
        Told();

        Assert.Equal(Status.Success, port.Close());

        Assert.False(File.Exists(port.Path));
        Assert.True(client.IsConnected);
        Assert.Equal(Status.InvalidDeviceState, port.Close());
    }

    [Fact]
    public void A_driver_that_unloads_closes_its_ports_without_being_told()
    {
        IPort? port = null;
        IDriverContext c = _k.Start(ctx => ctx.Ports.CreatePort("unload", new PortOptions(), Telling(), out port), out Palisade.Kernel.Drivers.DriverObject record);
        PortClient client = Connect(port!);
        Told();

        Assert.Equal(Status.Success, _k.Kernel.StopDriver(record));

        Assert.False(File.Exists(port!.Path));
        Assert.Null(client.Receive());
        Assert.Empty(_told);
        Assert.Equal(Status.InvalidDeviceState, c.Ports.CreatePort("again", new PortOptions(), new PortCallbacks(), out _));
    }

    [Fact]
    public void An_excluded_process_passes_the_drivers_file_callbacks_and_included_again_it_reaches_them()
    {
        var seen = new ConcurrentBag<int>();
        IDriverContext c = _k.Start(ctx => ctx.Files.RegisterFilter(Filter(seen), out _));
        string file = Path.Combine(_k.Home, "f");
        File.WriteAllText(file, "x");
        int self = Environment.ProcessId;

        Assert.Equal(Status.Success, c.Ports.ExcludeProcess(self));
        Assert.Equal(Status.Success, _k.Open(file, pid: self));
        Assert.Equal(Status.Success, _k.Open(file, pid: 100));
        Assert.Equal(new[] { 100 }, seen.ToArray());

        Assert.Equal(Status.Success, c.Ports.IncludeProcess(self));
        Assert.Equal(Status.Success, _k.Open(file, pid: self));
        Assert.Contains(self, seen);
    }

    [Fact]
    public void Exclusion_takes_only_live_processes_and_include_only_what_was_excluded()
    {
        IDriverContext c = _k.Start(_ => Status.Success);

        Assert.Equal(Status.InvalidParameter, c.Ports.ExcludeProcess(0));
        Assert.Equal(Status.NotFound, c.Ports.ExcludeProcess(int.MaxValue));
        Assert.Equal(Status.NotFound, c.Ports.IncludeProcess(Environment.ProcessId));
    }

    [Fact]
    public void An_exclusion_ends_with_its_process_and_does_not_pass_to_a_later_process_of_the_same_number()
    {
        var seen = new ConcurrentBag<int>();
        IDriverContext c = _k.Start(ctx => ctx.Files.RegisterFilter(Filter(seen), out _));
        // A child that lives until it is ended (a /bin/true could end, and be reaped, before the exclusion is asked for).
        using var child = System.Diagnostics.Process.Start("/bin/sleep", "600")!;
        Assert.Equal(Status.Success, c.Ports.ExcludeProcess(child.Id));
        child.Kill();
        Assert.True(child.WaitForExit(30_000));
        string file = Path.Combine(_k.Home, "f");
        File.WriteAllText(file, "x");

        Assert.Equal(Status.Success, _k.Open(file, pid: child.Id));

        Assert.Equal(new[] { child.Id }, seen.ToArray());
    }

    [Fact]
    public void A_port_that_excludes_its_clients_keeps_a_client_out_of_the_drivers_file_callbacks_while_it_is_connected()
    {
        var seen = new ConcurrentBag<int>();
        IPort? port = null;
        _k.Start(ctx =>
        {
            Status s = ctx.Ports.CreatePort("excl", new PortOptions { ExcludeClientsFromFileCallbacks = true }, Telling(), out port);
            return s.IsError ? s : ctx.Files.RegisterFilter(Filter(seen), out _);
        });
        string file = Path.Combine(_k.Home, "f");
        File.WriteAllText(file, "x");
        PortClient client = Connect(port!);
        Told();

        Assert.Equal(Status.Success, _k.Open(file, pid: Environment.ProcessId));
        Assert.Empty(seen);
        client.Dispose();
        Told();
        Assert.Equal(Status.Success, _k.Open(file, pid: Environment.ProcessId));
        Assert.Equal(new[] { Environment.ProcessId }, seen.ToArray());
    }

    /// <summary>A client that answers the driver's next message with <paramref name="reply"/> and <paramref name="status"/>.</summary>
    private static BackgroundCall<bool> Answering(PortClient client, byte[] reply, uint status) => new(() =>
    {
        PortMessage m = client.Receive()!;
        client.Reply(m.Id, reply, status);
        return m.WantsReply;
    });

    /// <summary>This process's effective group id, from /proc/self/status.</summary>
    private static uint EffectiveGroupId() =>
        uint.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("Gid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[2], System.Globalization.CultureInfo.InvariantCulture);

    private static FilterRegistration Filter(ConcurrentBag<int> seen) => new()
    {
        Name = "seen" + Guid.NewGuid().ToString("N")[..8],
        Altitude = "320000",
        Operations =
        [
            new FileOperationRegistration
            {
                Kind = FileOperationKind.Create,
                PreOperation = (ref FileOperation op) =>
                {
                    seen.Add(op.RequesterProcessId);
                    return PreOperationStatus.SuccessNoCallback;
                },
            },
        ],
    };

    /// <summary>The handshake of docs/ports.md by hand: Hello in, Connect out (no context, no signature), Connected in.</summary>
    private static void Handshake(Socket raw, string path)
    {
        raw.Connect(new UnixDomainSocketEndPoint(path));
        byte[] record = new byte[128];
        Assert.Equal(56, raw.Receive(record));
        byte[] connect = new byte[24];
        connect[0] = 2;
        raw.Send(connect);
        Assert.Equal(16, raw.Receive(record));
        Assert.Equal(3, record[0]);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(record.AsSpan(4)));
    }
}
