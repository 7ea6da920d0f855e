using System.Net.Sockets;
using Palisade.Api;
using Palisade.Kernel.Isolation;

namespace Palisade.Kernel.Tests.Isolation;

/// <summary>
/// The wire format between the kernel and a driver host (IsolationProtocol, IsolationCodec) and the channel that carries
/// it: what crosses by value, and that a malformed record is refused with a status and fails the channel.
/// </summary>
public sealed class IsolationProtocolTests : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        foreach (IDisposable d in _owned)
        {
            d.Dispose();
        }
    }

    private static byte[] Record(IsolationOp op, Action<byte[]>? patch = null, int extra = 0)
    {
        byte[] b = new byte[IsolationRecord.HeaderSize + extra];
        var w = new RecordWriter(b, 1, RecordKind.Call, op);
        Assert.False(w.Overflowed);
        patch?.Invoke(b);
        return b;
    }

    [Fact]
    public void A_file_operation_crosses_by_value_with_every_fact_the_kernel_resolved()
    {
        var op = new FileOperation
        {
            Kind = FileOperationKind.Rename,
            RequesterProcessId = 41,
            RequesterThreadId = 42,
            UserId = 1000,
            Path = "/srv/ü/a",
            RequestedPath = "a",
            NewPath = "/srv/b",
            RequestedNewPath = null,
            Access = FileAccessRights.Read | FileAccessRights.Execute,
            Disposition = CreateDisposition.OpenIf,
            CreateResult = CreateResult.Created,
            OpenFlags = 0x241,
            Flags = 4,
            InformationClass = FileInformationClass.Mode,
            InformationValue = 0x1ff,
            AttributeName = "user.x",
            Offset = -1,
            Length = 7,
            IsDirectory = true,
            File = new FileIdentity(8, 9),
            FileType = FileObjectType.Regular,
            FileSystemType = 0xef53,
            Status = Status.AccessDenied,
            HoldDeadline = 99,
        };
        byte[] buffer = new byte[IsolationRecord.MaximumSize];
        var w = new RecordWriter(buffer, 3, RecordKind.Call, IsolationOp.FilePre);
        IsolationCodec.Write(ref w, in op);

        var r = new RecordReader(w.Written[IsolationRecord.HeaderSize..]);
        FileOperation back = IsolationCodec.ReadFileOperation(ref r);

        Assert.Equal(Status.Success, r.Finish());
        Assert.Equal(op, back);
    }

    [Fact]
    public void A_record_shorter_than_its_header_is_rejected_with_InvalidParameter()
    {
        Assert.Equal(Status.InvalidParameter, IsolationRecord.TryParseHeader(new byte[IsolationRecord.HeaderSize - 1], out _, out _, out _));
    }

    [Theory]
    [InlineData(4, 3)] // kind 3 is neither call nor reply
    [InlineData(5, 1)] // the reserved byte is not 0
    [InlineData(6, 200)] // operation 200 is not defined
    [InlineData(0, 0)] // conversation 0
    public void A_header_with_an_undefined_field_is_rejected_with_InvalidParameter(int offset, byte value)
    {
        byte[] record = Record(IsolationOp.Load, b =>
        {
            if (offset == 0)
            {
                Array.Clear(b, 0, 4);
            }
            else
            {
                b[offset] = value;
            }
        });

        Assert.Equal(Status.InvalidParameter, IsolationRecord.TryParseHeader(record, out _, out _, out _));
    }

    [Fact]
    public void A_well_formed_header_is_read_back()
    {
        Assert.Equal(Status.Success, IsolationRecord.TryParseHeader(Record(IsolationOp.ReadFile), out uint id, out RecordKind kind, out IsolationOp op));
        Assert.Equal((1u, RecordKind.Call, IsolationOp.ReadFile), (id, kind, op));
    }

    [Fact]
    public void A_string_longer_than_the_record_is_malformed()
    {
        byte[] args = [5, 0, 0, 0, (byte)'a', (byte)'b'];
        var r = new RecordReader(args);

        Assert.Null(r.String());
        Assert.Equal(Status.InvalidParameter, r.Finish());
    }

    [Fact]
    public void A_string_that_is_not_UTF8_is_malformed()
    {
        byte[] args = [2, 0, 0, 0, 0xC3, 0x28];
        var r = new RecordReader(args);

        Assert.Null(r.String());
        Assert.Equal(Status.InvalidParameter, r.Finish());
    }

    [Fact]
    public void Bytes_left_after_the_arguments_are_malformed()
    {
        byte[] args = [1, 0, 0, 0, 9];
        var r = new RecordReader(args);

        Assert.Equal(1, r.I32());
        Assert.Equal(Status.InvalidParameter, r.Finish());
    }

    [Fact]
    public void An_undefined_enum_value_is_malformed()
    {
        byte[] args = [0xFF, 0, 0, 0];
        var r = new RecordReader(args);

        _ = r.Enum<FileOperationKind>();
        Assert.Equal(Status.InvalidParameter, r.Finish());
    }

    [Fact]
    public void A_list_that_claims_more_items_than_bytes_is_malformed_without_allocating_them()
    {
        byte[] args = [0xFF, 0xFF, 0xFF, 0x7F];
        var r = new RecordReader(args);

        Assert.Empty(r.Strings());
        Assert.Equal(Status.InvalidParameter, r.Finish());
    }

    [Fact]
    public void A_record_that_does_not_fit_overflows_instead_of_being_cut()
    {
        byte[] small = new byte[16];
        var w = new RecordWriter(small, 1, RecordKind.Call, IsolationOp.ReportEvent);
        w.String("a string longer than the room left");

        Assert.True(w.Overflowed);
    }

    private (Socket Left, Socket Right) Pair()
    {
        string name = "\0palisade-isolation-test-" + Guid.NewGuid().ToString("N");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(name));
        listener.Listen(1);
        var left = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        left.Connect(new UnixDomainSocketEndPoint(name));
        Socket right = listener.Accept();
        _owned.Add(left);
        _owned.Add(right);
        return (left, right);
    }

    private sealed class Handler(Action<Conversation, IsolationOp> serve) : IIsolationHandler
    {
        public void Serve(Conversation conversation, IsolationOp op, ref RecordReader arguments)
        {
            _ = arguments.Finish();
            serve(conversation, op);
        }
    }

    [Fact]
    public async Task A_malformed_record_from_the_other_side_fails_the_channel_and_the_waiting_call_returns_false()
    {
        (Socket kernelEnd, Socket raw) = Pair();
        var channel = new IsolationChannel(kernelEnd, kernelSide: true, new Handler((c, _) => c.Reply(Status.Success)), TimeSpan.FromMinutes(1));
        _owned.Add(channel);
        channel.Start(null);
        var call = Task.Run(() =>
        {
            Conversation c = channel.Enter();
            try
            {
                RecordWriter w = c.BeginCall(IsolationOp.Unload);
                return c.Call(ref w, out _);
            }
            finally
            {
                channel.Leave(c);
            }
        });

        byte[] got = new byte[IsolationRecord.MaximumSize];
        Assert.Equal(IsolationRecord.HeaderSize, raw.Receive(got));
        raw.Send(new byte[] { 1, 2, 3 });

        Assert.False(await call.WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.StartsWith("a malformed record", channel.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void A_peer_that_does_not_answer_within_the_wait_fails_the_channel()
    {
        (Socket kernelEnd, _) = Pair();
        var channel = new IsolationChannel(kernelEnd, kernelSide: true, new Handler((c, _) => c.Reply(Status.Success)), TimeSpan.FromMilliseconds(50));
        _owned.Add(channel);
        channel.Start(null);
        Conversation c = channel.Enter();
        RecordWriter w = c.BeginCall(IsolationOp.Unload);

        Assert.False(c.Call(ref w, out _));
        channel.Leave(c);
        Assert.Equal("no answer within 50 ms", channel.Failure);
    }

    [Fact]
    public void A_call_the_other_side_makes_while_serving_is_served_on_the_thread_that_waits()
    {
        (Socket kernelEnd, Socket hostEnd) = Pair();
        int servedOn = 0;
        IsolationChannel? host = null;
        var kernel = new IsolationChannel(kernelEnd, kernelSide: true, new Handler((c, op) =>
        {
            servedOn = Environment.CurrentManagedThreadId;
            c.Reply(Status.Success);
        }), TimeSpan.FromMinutes(1));
        host = new IsolationChannel(hostEnd, kernelSide: false, new Handler((c, op) =>
        {
            // The host, serving the kernel's callback, calls the kernel: the same conversation.
            Conversation inner = host!.Enter();
            Assert.Same(c, inner);
            RecordWriter nested = inner.BeginCall(IsolationOp.ReportEvent);
            bool answered = inner.Call(ref nested, out RecordReader r);
            Status s = answered ? r.Status() : Status.Unsuccessful;
            host.Leave(inner);
            c.Reply(s);
        }), Timeout.InfiniteTimeSpan);
        _owned.Add(kernel);
        _owned.Add(host);
        kernel.Start(null);
        host.Start(null);

        Conversation c = kernel.Enter();
        RecordWriter w = c.BeginCall(IsolationOp.FilePre);
        bool replied = c.Call(ref w, out RecordReader reply);
        Status status = replied ? reply.Status() : Status.Unsuccessful;
        kernel.Leave(c);

        Assert.True(replied, kernel.Failure ?? host.Failure);
        Assert.Equal(Status.Success, status);
        Assert.Equal(Environment.CurrentManagedThreadId, servedOn);
    }

    [Fact]
    public void A_call_the_host_starts_outside_any_callback_reaches_the_kernel_on_a_valid_conversation()
    {
        // A work item of an isolated driver calls the kernel: the host's first conversation of its own must not be
        // conversation 0, which the kernel refuses as malformed.
        (Socket kernelEnd, Socket hostEnd) = Pair();
        IsolationOp served = 0;
        var kernel = new IsolationChannel(kernelEnd, kernelSide: true, new Handler((c, op) =>
        {
            served = op;
            c.Reply(Status.Success);
        }), TimeSpan.FromMinutes(1));
        var host = new IsolationChannel(hostEnd, kernelSide: false, new Handler((c, _) => c.Reply(Status.Success)), Timeout.InfiniteTimeSpan);
        _owned.Add(kernel);
        _owned.Add(host);
        kernel.Start(null);
        host.Start(null);

        Conversation c = host.Enter();
        RecordWriter w = c.BeginCall(IsolationOp.ReportEvent);
        bool replied = c.Call(ref w, out RecordReader reply);
        Status status = replied ? reply.Status() : Status.Unsuccessful;
        host.Leave(c);

        Assert.True(replied, kernel.Failure ?? host.Failure);
        Assert.Equal(Status.Success, status);
        Assert.Equal(IsolationOp.ReportEvent, served);
        Assert.NotEqual(0u, c.Id);
    }
}
