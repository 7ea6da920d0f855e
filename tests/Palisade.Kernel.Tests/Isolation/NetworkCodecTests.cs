using System.Net;
using Palisade.Api;
using Palisade.Kernel.Isolation;

namespace Palisade.Kernel.Tests.Isolation;

/// <summary>
/// The records of the network filter engine and registry callbacks of an isolated driver (NetworkCodec, operations
/// 80-93): what crosses by value, and that a record that cannot be decoded is refused with
/// <see cref="Status.InvalidParameter"/> (the channel then fails, IsolationProtocolTests).
/// </summary>
public sealed class NetworkCodecTests
{
    private readonly byte[] _buffer = new byte[IsolationRecord.MaximumSize];

    private ReadOnlySpan<byte> Arguments(int length) => _buffer.AsSpan(IsolationRecord.HeaderSize, length - IsolationRecord.HeaderSize);

    private RecordWriter Writer(IsolationOp op) => new(_buffer, 1, RecordKind.Call, op);

    private static NetworkClassifyContext Context(IReadOnlyList<string>? arguments) => new()
    {
        Layer = NetworkLayer.AcceptV6,
        Protocol = NetworkProtocol.Udp,
        LocalAddress = IPAddress.Parse("2001:db8::1"),
        LocalPort = 8080,
        RemoteAddress = IPAddress.Parse("2001:db8::2"),
        RemotePort = 41000,
        ProcessId = 4242,
        ProcessStartKey = 77,
        ApplicationPath = "/usr/bin/ü",
        ApplicationFile = new FileIdentity(3, 4),
        ApplicationHash = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(),
        Arguments = arguments,
        UserId = 1000,
        HoldDeadline = 123,
    };

    [Fact]
    public void A_classify_context_crosses_by_value_with_its_hold_deadline()
    {
        NetworkClassifyContext sent = Context(["prog", "", "a b"]);
        RecordWriter w = Writer(IsolationOp.Classify);
        NetworkCodec.Write(ref w, in sent);

        var r = new RecordReader(Arguments(w.Length));
        NetworkClassifyContext got = NetworkCodec.ReadClassifyContext(ref r);

        Assert.Equal(Status.Success, r.Finish());
        Assert.Equal(sent.Layer, got.Layer);
        Assert.Equal(sent.Protocol, got.Protocol);
        Assert.Equal(sent.LocalAddress, got.LocalAddress);
        Assert.Equal(sent.LocalPort, got.LocalPort);
        Assert.Equal(sent.RemoteAddress, got.RemoteAddress);
        Assert.Equal(sent.RemotePort, got.RemotePort);
        Assert.Equal(sent.ProcessId, got.ProcessId);
        Assert.Equal(sent.ProcessStartKey, got.ProcessStartKey);
        Assert.Equal(sent.ApplicationPath, got.ApplicationPath);
        Assert.Equal(sent.ApplicationFile, got.ApplicationFile);
        Assert.Equal(sent.ApplicationHash.ToArray(), got.ApplicationHash.ToArray());
        Assert.Equal(sent.Arguments, got.Arguments);
        Assert.Equal(sent.UserId, got.UserId);
        Assert.Equal(sent.HoldDeadline, got.HoldDeadline);
    }

    [Fact]
    public void Arguments_longer_than_a_record_can_spare_cross_as_not_read()
    {
        NetworkClassifyContext sent = Context([new string('x', NetworkCodec.MaximumArgumentBytes + 1)]);
        RecordWriter w = Writer(IsolationOp.Classify);
        NetworkCodec.Write(ref w, in sent);

        var r = new RecordReader(Arguments(w.Length));
        NetworkClassifyContext got = NetworkCodec.ReadClassifyContext(ref r);

        Assert.False(w.Overflowed);
        Assert.Equal(Status.Success, r.Finish());
        Assert.Null(got.Arguments);
    }

    [Fact]
    public void A_flow_crosses_by_value_with_its_deciding_filter()
    {
        var sent = new NetworkFlowInfo
        {
            Event = NetworkFlowEvent.Closed,
            FlowId = 9,
            Classify = Context(null) with { Layer = NetworkLayer.ConnectV4, LocalAddress = IPAddress.Loopback, RemoteAddress = null },
            DecidingFilter = "line 1 allow ConnectV4",
            DecidingDriver = null,
        };
        RecordWriter w = Writer(IsolationOp.FlowNotifications);
        NetworkCodec.Write(ref w, in sent);

        var r = new RecordReader(Arguments(w.Length));
        NetworkFlowInfo got = NetworkCodec.ReadFlow(ref r);

        Assert.Equal(Status.Success, r.Finish());
        Assert.Equal(NetworkFlowEvent.Closed, got.Event);
        Assert.Equal(9, got.FlowId);
        Assert.Equal(NetworkLayer.ConnectV4, got.Classify.Layer);
        Assert.Equal(IPAddress.Loopback, got.Classify.LocalAddress);
        Assert.Null(got.Classify.RemoteAddress);
        Assert.Null(got.Classify.Arguments);
        Assert.Equal("line 1 allow ConnectV4", got.DecidingFilter);
        Assert.Null(got.DecidingDriver);
    }

    [Fact]
    public void A_filter_crosses_with_every_kind_of_condition()
    {
        byte[] digest = [.. Enumerable.Repeat((byte)7, 32)];
        var sent = new NetworkFilter
        {
            Name = "f",
            Layer = NetworkLayer.ConnectV4,
            Sublayer = new CallbackCookie(11),
            Weight = ulong.MaxValue,
            Action = NetworkAction.Callout,
            Callout = new CallbackCookie(12),
            Flags = NetworkFilterFlags.HardPermit | NetworkFilterFlags.Veto,
            Conditions =
            [
                NetworkCondition.RemoteAddress(IPAddress.Parse("10.0.0.0"), 8),
                NetworkCondition.LocalAddress(IPAddress.Parse("127.0.0.1"), 32),
                NetworkCondition.RemotePort(80, 443),
                NetworkCondition.LocalPort(0, 65535),
                NetworkCondition.Protocol(NetworkProtocol.Tcp),
                NetworkCondition.ApplicationPath("/usr/bin/curl"),
                NetworkCondition.ApplicationFolder("/opt/tools/"),
                NetworkCondition.UserId(1000),
                NetworkCondition.ApplicationHash(digest),
            ],
        };
        RecordWriter w = Writer(IsolationOp.AddFilter);
        NetworkCodec.Write(ref w, sent);

        var r = new RecordReader(Arguments(w.Length));
        NetworkFilter? got = NetworkCodec.ReadFilter(ref r);

        Assert.Equal(Status.Success, r.Finish());
        Assert.NotNull(got);
        Assert.Equal((sent.Name, sent.Layer, sent.Sublayer, sent.Weight, sent.Action, sent.Callout, sent.Flags),
            (got.Name, got.Layer, got.Sublayer, got.Weight, got.Action, got.Callout, got.Flags));
        Assert.Equal(sent.Conditions.Count, got.Conditions.Count);
        for (int i = 0; i < sent.Conditions.Count; i++)
        {
            NetworkCondition a = sent.Conditions[i], b = got.Conditions[i];
            Assert.Equal((a.Field, a.Address, a.PrefixLength, a.LowPort, a.HighPort, a.MatchedProtocol, a.MatchedUserId, a.Path),
                (b.Field, b.Address, b.PrefixLength, b.LowPort, b.HighPort, b.MatchedProtocol, b.MatchedUserId, b.Path));
            Assert.Equal(a.Hash.ToArray(), b.Hash.ToArray());
        }
    }

    [Fact]
    public void A_filter_with_out_of_range_values_crosses_as_it_is_for_the_engine_to_refuse()
    {
        var sent = new NetworkFilter
        {
            Name = "bad",
            Layer = (NetworkLayer)99,
            Sublayer = new CallbackCookie(1),
            Action = (NetworkAction)7,
            Conditions = [NetworkCondition.RemotePort(443, 80), NetworkCondition.Protocol((NetworkProtocol)3)],
        };
        RecordWriter w = Writer(IsolationOp.AddFilter);
        NetworkCodec.Write(ref w, sent);

        var r = new RecordReader(Arguments(w.Length));
        NetworkFilter? got = NetworkCodec.ReadFilter(ref r);

        Assert.Equal(Status.Success, r.Finish());
        Assert.Equal((NetworkLayer)99, got!.Layer);
        Assert.Equal((NetworkAction)7, got.Action);
        Assert.Equal((443, 80), (got.Conditions[0].LowPort, got.Conditions[0].HighPort));
        Assert.Equal((NetworkProtocol)3, got.Conditions[1].MatchedProtocol);
    }

    /// <summary>A filter record up to its condition count.</summary>
    private RecordWriter FilterHead(uint conditions)
    {
        RecordWriter w = Writer(IsolationOp.AddFilter);
        w.String("f");
        w.I32((int)NetworkLayer.ConnectV4);
        w.I64(1);
        w.U64(0);
        w.I32((int)NetworkAction.Block);
        w.I64(0);
        w.I32(0);
        w.U32(conditions);
        return w;
    }

    [Fact]
    public void A_filter_record_with_more_than_16_conditions_is_malformed()
    {
        RecordWriter w = FilterHead(17);

        var r = new RecordReader(Arguments(w.Length));

        Assert.Null(NetworkCodec.ReadFilter(ref r));
        Assert.Equal(Status.InvalidParameter, r.Finish());
    }

    [Fact]
    public void A_condition_of_an_unknown_field_is_malformed()
    {
        RecordWriter w = FilterHead(1);
        w.I32(42);
        _ = w.Data(0);
        w.I32(0);
        w.I32(0);
        w.I32(0);
        w.I32(0);
        w.I32(0);
        w.String(null);
        _ = w.Data(0);

        var r = new RecordReader(Arguments(w.Length));

        Assert.Null(NetworkCodec.ReadFilter(ref r));
        Assert.Equal(Status.InvalidParameter, r.Finish());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(17)]
    public void An_address_of_any_length_but_4_or_16_bytes_is_malformed(int length)
    {
        RecordWriter w = Writer(IsolationOp.Classify);
        w.I32((int)NetworkLayer.ConnectV4);
        w.I32((int)NetworkProtocol.Tcp);
        _ = w.Data(length);

        var r = new RecordReader(Arguments(w.Length));
        _ = r.I32();
        _ = r.I32();

        Assert.Null(NetworkCodec.Address(ref r));
        Assert.Equal(Status.InvalidParameter, r.Finish());
    }

    [Fact]
    public void A_classify_context_cut_short_is_malformed()
    {
        NetworkClassifyContext sent = Context(null);
        RecordWriter w = Writer(IsolationOp.Classify);
        NetworkCodec.Write(ref w, in sent);

        var r = new RecordReader(Arguments(w.Length - 1));
        _ = NetworkCodec.ReadClassifyContext(ref r);

        Assert.Equal(Status.InvalidParameter, r.Finish());
    }

    [Fact]
    public void A_registry_notification_crosses_by_value_with_its_data()
    {
        var sent = new RegistryNotification
        {
            NotifyClass = RegistryNotifyClass.PostQueryValue,
            ProcessId = 5,
            KeyPath = @"\Registry\Machine\Software\Vendor",
            ValueName = "",
            NewName = null,
            ValueType = RegistryValueType.Binary,
            Data = new byte[] { 0, 1, 2, 255 },
            OperationStatus = Status.ObjectNameNotFound,
        };
        RecordWriter w = Writer(IsolationOp.RegistryCallback);
        NetworkCodec.Write(ref w, in sent);

        var r = new RecordReader(Arguments(w.Length));
        RegistryNotification got = NetworkCodec.ReadRegistryNotification(ref r);

        Assert.Equal(Status.Success, r.Finish());
        Assert.Equal((sent.NotifyClass, sent.ProcessId, sent.KeyPath, sent.ValueName, sent.NewName, sent.ValueType, sent.OperationStatus),
            (got.NotifyClass, got.ProcessId, got.KeyPath, got.ValueName, got.NewName, got.ValueType, got.OperationStatus));
        Assert.Equal(sent.Data.ToArray(), got.Data.ToArray());
    }

    [Fact]
    public void A_registry_notification_of_an_unknown_class_is_malformed()
    {
        RecordWriter w = Writer(IsolationOp.RegistryCallback);
        w.I32(1000);
        w.I32(0);
        w.String(@"\Registry\Machine");
        w.String(null);
        w.String(null);
        w.I32(0);
        _ = w.Data(0);
        w.Status(Status.Success);

        var r = new RecordReader(Arguments(w.Length));
        _ = NetworkCodec.ReadRegistryNotification(ref r);

        Assert.Equal(Status.InvalidParameter, r.Finish());
    }

    [Theory]
    [InlineData(80, true)]
    [InlineData(81, true)]
    [InlineData(82, true)]
    [InlineData(83, false)]
    [InlineData(84, true)]
    [InlineData(93, true)]
    [InlineData(94, false)]
    [InlineData(99, false)]
    public void The_network_and_registry_operations_are_known_and_the_numbers_between_are_not(int op, bool known)
    {
        RecordWriter w = Writer((IsolationOp)op);

        Status s = IsolationRecord.TryParseHeader(_buffer.AsSpan(0, w.Length), out _, out _, out _);

        Assert.Equal(known ? Status.Success : Status.InvalidParameter, s);
    }
}
