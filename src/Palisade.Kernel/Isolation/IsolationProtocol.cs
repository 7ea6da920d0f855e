// The wire format between the kernel and a driver host (docs/security.md, "The isolated mode"). Each record is one
// SOCK_SEQPACKET message: an 8-byte header, then the arguments. Integers are little-endian; a string is a u32 byte count
// (0xFFFFFFFF for null) and that many bytes of UTF-8; a list is a u32 count and its items.
//
//   offset 0  u32  conversation  (odd: started by the kernel, even: started by the host)
//   offset 4  u8   kind          (RecordKind: Call or Reply)
//   offset 5  u8   reserved      (0)
//   offset 6  u16  operation     (IsolationOp; a Reply repeats its call's)
//
// A conversation is one chain of control that crosses the boundary: a callback the kernel makes, and every call the
// driver makes back into the kernel while it runs (ReadFile in a post-create, OpenFile, the verdict cache), and every
// callback those calls cause in turn, all on the same conversation, so that each side serves them on the very thread that
// waits (the kernel's post-create state and the driver's thread-statics are per thread). Within a conversation the two
// sides strictly alternate. A reply starts with a u32 Status.
using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

/// <summary>What a record is.</summary>
internal enum RecordKind : byte
{
    /// <summary>A call: the other side runs the operation and replies on the same conversation.</summary>
    Call = 1,

    /// <summary>The reply to the innermost call of the conversation.</summary>
    Reply = 2,

    /// <summary>
    /// A one-way record outside every conversation: no reply. Its conversation field is 1 from the kernel, 2 from the
    /// host. The kernel sends it without waiting (a full socket drops it and counts it); the host serves them in order
    /// on a thread of its own (IsolationChannel.Notify.cs).
    /// </summary>
    Notify = 3,
}

/// <summary>The operations of the protocol: callbacks (kernel to host) and API calls (host to kernel).</summary>
internal enum IsolationOp : ushort
{
    /// <summary>Kernel to host: call the driver's Load with these parameters. Reply: status, message.</summary>
    Load = 1,

    /// <summary>Kernel to host: call the driver's Unload. Reply: status.</summary>
    Unload = 2,

    /// <summary>Kernel to host: a minifilter pre callback (host registration, the operation). Reply: outcome, verdict, status, context token.</summary>
    FilePre = 3,

    /// <summary>Kernel to host: a minifilter post callback (host registration, the operation, context token). Reply: outcome, status.</summary>
    FilePost = 4,

    /// <summary>Kernel to host: a process-create callback. Reply: outcome, verdict status.</summary>
    ProcessCreate = 5,

    /// <summary>Kernel to host: an image-load callback. Reply: outcome, verdict status.</summary>
    ImageLoad = 6,

    /// <summary>Kernel to host: the driver's parameters changed. Reply: outcome, status.</summary>
    ParametersChanged = 7,

    /// <summary>Host to kernel: IDriverContext.ReportEvent.</summary>
    ReportEvent = 32,

    /// <summary>Host to kernel: IFilterManager.RegisterFilter (name, altitude, verdict cache capacity, then per operation its
    /// kind, host registration id, which callbacks it has and its flags). Reply: status, cookie.</summary>
    RegisterFilter = 33,

    /// <summary>Host to kernel: IFilterManager.UnregisterFilter.</summary>
    UnregisterFilter = 34,

    /// <summary>Host to kernel: IDriverContext.SetCallbackOptions.</summary>
    SetCallbackOptions = 35,

    /// <summary>Host to kernel: IDriverContext.EnableRegistration.</summary>
    EnableRegistration = 36,

    /// <summary>Host to kernel: IDriverContext.DisableRegistration.</summary>
    DisableRegistration = 37,

    /// <summary>Host to kernel: IFilterManager.GetFileVerdict. Reply: status, verdict token.</summary>
    GetFileVerdict = 38,

    /// <summary>Host to kernel: IFilterManager.SetFileVerdict (cookie, identity, stamp, the host's number for the verdict,
    /// i32 FileVerdictFlags). Reply: status.</summary>
    SetFileVerdict = 39,

    /// <summary>Host to kernel: IFilterManager.ReadFile(cookie, ...). Reply: status, the bytes read.</summary>
    ReadFile = 40,

    /// <summary>Host to kernel: IFilterManager.OpenFile (cookie, path, access). Reply: status, stream handle, file identity.</summary>
    OpenFile = 41,

    /// <summary>Host to kernel: read from a stream OpenFile gave. Reply: status, the bytes read.</summary>
    StreamRead = 42,

    /// <summary>Host to kernel: close a stream OpenFile gave.</summary>
    StreamClose = 43,

    /// <summary>Host to kernel: IFilterManager.RenameFile (with or without an expected identity).</summary>
    RenameFile = 44,

    /// <summary>Host to kernel: IFilterManager.DeleteFile (with or without an expected identity).</summary>
    DeleteFile = 45,

    /// <summary>Host to kernel: IFilterManager.SetFileInformation.</summary>
    SetFileInformation = 46,

    /// <summary>Host to kernel: IProcessCallbacks.RegisterProcessCreate. Reply: status, cookie.</summary>
    RegisterProcessCreate = 47,

    /// <summary>Host to kernel: IProcessCallbacks.RegisterImageLoad. Reply: status, cookie.</summary>
    RegisterImageLoad = 48,

    /// <summary>Host to kernel: IProcessCallbacks.Unregister.</summary>
    UnregisterProcessCallback = 49,

    /// <summary>Host to kernel: ISecurityCenter.RegisterProduct. Reply: status, cookie.</summary>
    RegisterProduct = 50,

    /// <summary>Host to kernel: ISecurityCenter.ReportState.</summary>
    ReportProductState = 51,

    /// <summary>Host to kernel: ISecurityCenter.UnregisterProduct.</summary>
    UnregisterProduct = 52,

    /// <summary>Host to kernel: IDriverContext.RegisterParametersChanged. Reply: status, cookie.</summary>
    RegisterParametersChanged = 53,

    /// <summary>Host to kernel: IDriverContext.UnregisterParametersChanged.</summary>
    UnregisterParametersChanged = 54,

    /// <summary>Host to kernel: IFilterManager.QueryFileState. Reply: status, then the state's fields in declaration
    /// order (identity, type, size, the three times, stamp, writer check, guest write descriptions).</summary>
    QueryFileState = 55,

    // 60-79: process notifications and process control (IsolatedDriver.Processes.cs, RemoteApi.Processes.cs).

    /// <summary>Kernel to host, Notify: a process-exit callback (host registration, the exit by value).</summary>
    ProcessExit = 60,

    /// <summary>Kernel to host, Notify: a thread-create callback (host registration, the thread by value).</summary>
    ThreadCreate = 61,

    /// <summary>Kernel to host, Notify: a thread-exit callback (host registration, the thread by value).</summary>
    ThreadExit = 62,

    /// <summary>Kernel to host, Notify: a process-fork callback (host registration, the fork by value).</summary>
    ProcessFork = 63,

    /// <summary>Kernel to host, Notify: an exec-result callback (host registration, the result by value).</summary>
    ExecResult = 64,

    /// <summary>Host to kernel, Notify: u32 notifications the host dropped because its queue was full.</summary>
    NotificationsDropped = 65,

    /// <summary>Host to kernel: IProcessCallbacks.RegisterProcessExit with a host registration id. Reply: status, cookie.</summary>
    RegisterProcessExit = 66,

    /// <summary>Host to kernel: IProcessCallbacks.RegisterThreadCreate. Reply: status, cookie.</summary>
    RegisterThreadCreate = 67,

    /// <summary>Host to kernel: IProcessCallbacks.RegisterThreadExit. Reply: status, cookie.</summary>
    RegisterThreadExit = 68,

    /// <summary>Host to kernel: IProcessCallbacks.RegisterProcessFork. Reply: status, cookie.</summary>
    RegisterProcessFork = 69,

    /// <summary>Host to kernel: IProcessCallbacks.RegisterExecResult. Reply: status, cookie.</summary>
    RegisterExecResult = 70,

    /// <summary>Host to kernel: IProcessCallbacks.TerminateProcess (i64 start key). Reply: status.</summary>
    TerminateProcess = 71,

    /// <summary>Host to kernel: IProcessCallbacks.SuspendProcess (i64 start key). Reply: status.</summary>
    SuspendProcess = 72,

    /// <summary>Host to kernel: IProcessCallbacks.ResumeProcess (i64 start key). Reply: status.</summary>
    ResumeProcess = 73,

    /// <summary>Host to kernel: ISecurityCenter.ListProducts. Reply: status, u32 count, then each product's kind (i32),
    /// display name, driver name and state (i32).</summary>
    ListProducts = 74,

    /// <summary>Host to kernel: IObjectCallbacks.Register (altitude, object types, operations, host registration ids of
    /// the pre and post callbacks, 0 for none). Reply: status, cookie.</summary>
    RegisterObjectCallback = 75,

    /// <summary>Host to kernel: IObjectCallbacks.Unregister.</summary>
    UnregisterObjectCallback = 76,

    /// <summary>Kernel to host: an object pre callback (host registration id, the operation by value). Reply: outcome, the
    /// desired access the callback left.</summary>
    ObjectPre = 77,

    /// <summary>Kernel to host, Notify: an object post callback (host registration id, the operation by value).</summary>
    ObjectPost = 78,

    /// <summary>The last process operation (60-79 are theirs).</summary>
    LastProcessOp = ListProducts,

    // 80-99: the network filter engine and registry callbacks (IsolatedDriver.Network.cs, RemoteApi.Network.cs,
    // RemoteApi.Registry.cs; the records in IsolationCodec.Network.cs).

    /// <summary>Kernel to host: a callout's classify function (host registration, the context). Reply: outcome, result.</summary>
    Classify = 80,

    /// <summary>Kernel to host: flow notifications, a batch sent off the guest's path (count, then host registration and
    /// flow of each). Reply: the outcome of each, in order.</summary>
    FlowNotifications = 81,

    /// <summary>Kernel to host: a registry pre or post callback (host registration, the notification). Reply: outcome,
    /// status, and for a bypass its type, data and names.</summary>
    RegistryCallback = 82,

    /// <summary>Host to kernel: INetworkFilterEngine.AddSublayer. Reply: status, cookie.</summary>
    AddSublayer = 84,

    /// <summary>Host to kernel: INetworkFilterEngine.DeleteSublayer.</summary>
    DeleteSublayer = 85,

    /// <summary>Host to kernel: INetworkFilterEngine.RegisterCallout with a host registration. Reply: status, cookie.</summary>
    RegisterCallout = 86,

    /// <summary>Host to kernel: INetworkFilterEngine.UnregisterCallout.</summary>
    UnregisterCallout = 87,

    /// <summary>Host to kernel: INetworkFilterEngine.AddFilter. Reply: status, cookie.</summary>
    AddFilter = 88,

    /// <summary>Host to kernel: INetworkFilterEngine.DeleteFilter.</summary>
    DeleteFilter = 89,

    /// <summary>Host to kernel: INetworkFilterEngine.RegisterFlowCallback with a host registration. Reply: status, cookie.</summary>
    RegisterFlowCallback = 90,

    /// <summary>Host to kernel: INetworkFilterEngine.UnregisterFlowCallback.</summary>
    UnregisterFlowCallback = 91,

    /// <summary>Host to kernel: IRegistryCallbacks.Register with a host registration and the altitude. Reply: status, cookie.</summary>
    RegisterRegistryCallback = 92,

    /// <summary>Host to kernel: IRegistryCallbacks.Unregister.</summary>
    UnregisterRegistryCallback = 93,

    // 100 on: held operations, fault callbacks, file contexts, written streams and communication ports
    // (IsolatedDriver.Holds.cs, IsolatedDriver.Files.cs, IsolatedDriver.Ports.cs and their RemoteApi counterparts).

    /// <summary>Host to kernel: IFilterManager.PendPreOperation, inside the pre callback the kernel is waiting for (same
    /// conversation). Reply: status, then the hold's id, kind, deadline, requester process and thread, registration cookie,
    /// and the file identity and change stamp the pend gave the operation.</summary>
    PendPreOperation = 100,

    /// <summary>Host to kernel: IFilterManager.CompletePendedPreOperation (hold id, verdict, status, completion context
    /// number). Reply: status (<see cref="Palisade.Api.Status.NotFound"/> for a hold the kernel no longer keeps).</summary>
    CompletePendedPreOperation = 101,

    /// <summary>Host to kernel: IFilterManager.ReadFile of a held create (hold id, offset, length). Reply: status, the bytes read.</summary>
    ReadPendedFile = 102,

    /// <summary>Kernel to host: the kernel ended a hold without the driver's completion (hold id, the state it ended in).
    /// Reply: outcome.</summary>
    HoldEnded = 103,

    /// <summary>Host to kernel: IDriverContext.RegisterFaultCallback with a host registration id. Reply: status, cookie.</summary>
    RegisterFaultCallback = 104,

    /// <summary>Host to kernel: IDriverContext.UnregisterFaultCallback.</summary>
    UnregisterFaultCallback = 105,

    /// <summary>Kernel to host: a fault of one of the driver's registrations (host registration id, then the fault's
    /// fields in declaration order). Reply: outcome, status.</summary>
    RegistrationFault = 106,

    /// <summary>Host to kernel: write to a stream OpenFile gave (handle, offset, the bytes). Reply: status.</summary>
    StreamWrite = 107,

    /// <summary>Host to kernel: the length of a stream OpenFile gave. Reply: status, length.</summary>
    StreamLength = 108,

    /// <summary>Host to kernel: set the length of a stream OpenFile gave for writing (handle, length). Reply: status.</summary>
    StreamSetLength = 109,

    /// <summary>Host to kernel: IFilterManager.SetFileContext (cookie, identity, the host's number for the context).
    /// Reply: status, the number of the context it replaced (0 for none).</summary>
    SetFileContext = 110,

    /// <summary>Host to kernel: IFilterManager.GetFileContext (cookie, identity). Reply: status, the context's number.</summary>
    GetFileContext = 111,

    /// <summary>Host to kernel: IFilterManager.DeleteFileContext (cookie, identity). Reply: status, the removed context's number.</summary>
    DeleteFileContext = 112,

    /// <summary>Host to kernel: IPortManager.CreatePort (name, options, host registration id, which callbacks the
    /// driver gave). Reply: status, port handle, the socket's path.</summary>
    CreatePort = 113,

    /// <summary>Host to kernel: IPort.Close (port handle).</summary>
    ClosePort = 114,

    /// <summary>Kernel to host: a client connects (host registration id, port handle, connection id, process, user and
    /// group ids, the connect context bytes). Reply: outcome, status (an error refuses the client).</summary>
    PortConnect = 115,

    /// <summary>Kernel to host: a connection ended (host registration id, connection id). Reply: outcome, status.</summary>
    PortDisconnect = 116,

    /// <summary>Kernel to host: a client's message (host registration id, connection id, room for a reply, the message).
    /// Reply: outcome, status, reply length, the reply's bytes.</summary>
    PortMessage = 117,

    /// <summary>Host to kernel: IPortConnection.Send without a reply (connection id, timeout ticks, the message).</summary>
    PortSend = 118,

    /// <summary>Host to kernel: IPortConnection.Send with a reply (connection id, timeout ticks, room for the reply, the
    /// message). Reply: status, reply length, the reply's bytes.</summary>
    PortSendForReply = 119,

    /// <summary>Host to kernel: IPortConnection.Close (connection id).</summary>
    CloseConnection = 120,

    /// <summary>Host to kernel: IPortManager.ExcludeProcess (process id).</summary>
    ExcludeProcess = 121,

    /// <summary>Host to kernel: IPortManager.IncludeProcess (process id).</summary>
    IncludeProcess = 122,

    /// <summary>Host to kernel: IProcessCallbacks.PendCreate, inside the process-create callback the kernel is waiting for
    /// (same conversation). Reply: status, then the hold's id, kind, deadline, requester process and thread, registration cookie.</summary>
    PendCreate = 123,

    /// <summary>Host to kernel: INetworkFilterEngine.PendClassify, inside the classify function the kernel is waiting for.
    /// Reply: as <see cref="PendCreate"/>.</summary>
    PendClassify = 124,

    /// <summary>Host to kernel: IObjectCallbacks.PendOperation, inside the object pre callback the kernel is waiting for.
    /// Reply: as <see cref="PendCreate"/>.</summary>
    PendObjectOperation = 125,

    /// <summary>Host to kernel: the completion of a held process create (the verdict's status code), classification (the
    /// result) or object operation (the access granted): hold id, i64 value. Reply: status
    /// (<see cref="Palisade.Api.Status.NotFound"/> for a hold the kernel no longer keeps).</summary>
    CompletePended = 126,

    // 130 on: the verdict cache's additions (RemoteApi.Verdicts.cs).

    /// <summary>Host to kernel: IFilterManager.ClearFileVerdicts (cookie). Reply: status.</summary>
    ClearFileVerdicts = 130,
}

/// <summary>How a callback ran in the host: its verdict follows, or it threw (the kernel treats it as a callback that threw).</summary>
internal enum CallbackOutcome : byte
{
    /// <summary>It returned; the verdict fields follow.</summary>
    Returned = 0,

    /// <summary>It threw; the exception's type and message follow.</summary>
    Threw = 1,
}

/// <summary>The record header and its limits.</summary>
internal static class IsolationRecord
{
    /// <summary>Bytes of the header.</summary>
    public const int HeaderSize = 8;

    /// <summary>The largest record either side sends or accepts: a port message of the most bytes a port allows (64 KiB) with its fields.</summary>
    public const int MaximumSize = (64 * 1024) + 1024;

    /// <summary>The most bytes one ReadFile or stream read carries (the rest of a record is its header and status).</summary>
    public const int MaximumData = MaximumSize - 256;

    /// <summary>Which operation numbers are defined (indexed by number): a record of any other is malformed.</summary>
    private static readonly bool[] s_known = Known();

    /// <summary>
    /// Reads a header. <see cref="Status.InvalidParameter"/> for a record shorter than a header or longer than the limit,
    /// conversation 0, an unknown kind or operation, or a reserved byte that is not 0.
    /// </summary>
    public static Status TryParseHeader(ReadOnlySpan<byte> record, out uint conversation, out RecordKind kind, out IsolationOp op)
    {
        conversation = 0;
        kind = 0;
        op = 0;
        if (record.Length < HeaderSize || record.Length > MaximumSize)
        {
            return Status.InvalidParameter;
        }

        conversation = BinaryPrimitives.ReadUInt32LittleEndian(record);
        kind = (RecordKind)record[4];
        op = (IsolationOp)BinaryPrimitives.ReadUInt16LittleEndian(record[6..]);
        bool known = (int)op < s_known.Length && s_known[(int)op];
        return conversation != 0 && kind is RecordKind.Call or RecordKind.Reply or RecordKind.Notify && record[5] == 0 && known ? Status.Success : Status.InvalidParameter;
    }

    private static bool[] Known()
    {
        IsolationOp[] defined = System.Enum.GetValues<IsolationOp>();
        var known = new bool[(int)defined.Max() + 1];
        foreach (IsolationOp op in defined)
        {
            known[(int)op] = true;
        }

        return known;
    }
}

/// <summary>Writes one record into a buffer; a record that does not fit sets <see cref="Overflowed"/> and writes nothing more.</summary>
internal ref struct RecordWriter
{
    private readonly Span<byte> _buffer;
    private int _at;

    /// <summary>Starts a record with its header.</summary>
    public RecordWriter(Span<byte> buffer, uint conversation, RecordKind kind, IsolationOp op)
    {
        _buffer = buffer[..Math.Min(buffer.Length, IsolationRecord.MaximumSize)];
        if (_buffer.Length < IsolationRecord.HeaderSize)
        {
            Overflowed = true;
            return;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(_buffer, conversation);
        _buffer[4] = (byte)kind;
        _buffer[5] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer[6..], (ushort)op);
        _at = IsolationRecord.HeaderSize;
    }

    /// <summary>The bytes written.</summary>
    public readonly int Length => _at;

    /// <summary>True when something did not fit: the record must not be sent.</summary>
    public bool Overflowed { get; private set; }

    /// <summary>The record written so far.</summary>
    public readonly ReadOnlySpan<byte> Written => _buffer[.._at];

    public void U8(byte value)
    {
        if (Take(1) is { Length: 1 } s)
        {
            s[0] = value;
        }
    }

    public void Bool(bool value) => U8(value ? (byte)1 : (byte)0);

    public void I32(int value)
    {
        if (Take(4) is { Length: 4 } s)
        {
            BinaryPrimitives.WriteInt32LittleEndian(s, value);
        }
    }

    public void U32(uint value)
    {
        if (Take(4) is { Length: 4 } s)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(s, value);
        }
    }

    public void I64(long value)
    {
        if (Take(8) is { Length: 8 } s)
        {
            BinaryPrimitives.WriteInt64LittleEndian(s, value);
        }
    }

    public void U64(ulong value)
    {
        if (Take(8) is { Length: 8 } s)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s, value);
        }
    }

    public void Status(Status value) => U32(value.Code);

    public void Identity(FileIdentity value)
    {
        U64(value.Device);
        U64(value.Inode);
    }

    public void Stamp(FileChangeStamp value)
    {
        I64(value.Size);
        I64(value.ModificationTime);
        I64(value.ChangeTime);
        I64(value.BirthTime);
    }

    public void String(string? value)
    {
        if (value is null)
        {
            U32(uint.MaxValue);
            return;
        }

        int bytes = Encoding.UTF8.GetByteCount(value);
        U32((uint)bytes);
        Span<byte> into = Take(bytes);
        if (!Overflowed)
        {
            Encoding.UTF8.GetBytes(value, into);
        }
    }

    /// <summary>Room for <paramref name="count"/> bytes of data written in place (a read's bytes), after their u32 count.</summary>
    public Span<byte> Data(int count)
    {
        U32((uint)count);
        return Take(count);
    }

    /// <summary>The bytes written by <see cref="Data"/> were fewer than reserved: shrinks the record to them.</summary>
    public void TrimData(int reserved, int used)
    {
        if (Overflowed || used < 0 || used > reserved)
        {
            return;
        }

        _at -= reserved;
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.Slice(_at - 4, 4), (uint)used);
        _at += used;
    }

    private Span<byte> Take(int count)
    {
        if (Overflowed || count < 0 || count > _buffer.Length - _at)
        {
            Overflowed = true;
            return [];
        }

        Span<byte> s = _buffer.Slice(_at, count);
        _at += count;
        return s;
    }
}

/// <summary>
/// Reads the arguments of one record. A read past the end, a string that is not UTF-8 or longer than the record, or
/// an enum value out of range sets <see cref="Malformed"/>; <see cref="Finish"/> then, or when bytes are left over,
/// returns <see cref="Status.InvalidParameter"/>.
/// </summary>
internal ref struct RecordReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _at;

    /// <summary>Reads <paramref name="arguments"/>: the record after its header.</summary>
    public RecordReader(ReadOnlySpan<byte> arguments) => _data = arguments;

    /// <summary>True once something could not be read.</summary>
    public bool Malformed { get; private set; }

    /// <summary>Marks the record malformed: a value read is not one the record may hold.</summary>
    public void Fail() => Malformed = true;

    /// <summary>Success when everything was read and nothing is left; <see cref="Status.InvalidParameter"/> otherwise.</summary>
    public readonly Status Finish() => !Malformed && _at == _data.Length ? Api.Status.Success : Api.Status.InvalidParameter;

    public byte U8()
    {
        ReadOnlySpan<byte> s = Take(1);
        return s.IsEmpty ? (byte)0 : s[0];
    }

    public bool Bool()
    {
        byte b = U8();
        if (b > 1)
        {
            Malformed = true;
        }

        return b == 1;
    }

    public int I32() => Take(4) is { Length: 4 } s ? BinaryPrimitives.ReadInt32LittleEndian(s) : 0;

    public uint U32() => Take(4) is { Length: 4 } s ? BinaryPrimitives.ReadUInt32LittleEndian(s) : 0;

    public long I64() => Take(8) is { Length: 8 } s ? BinaryPrimitives.ReadInt64LittleEndian(s) : 0;

    public ulong U64() => Take(8) is { Length: 8 } s ? BinaryPrimitives.ReadUInt64LittleEndian(s) : 0;

    public Status Status() => new(U32());

    public FileIdentity Identity()
    {
        ulong device = U64();
        ulong inode = U64();
        return new FileIdentity(device, inode);
    }

    public FileChangeStamp Stamp()
    {
        long size = I64();
        long modified = I64();
        long changed = I64();
        long born = I64();
        return new FileChangeStamp(size, modified, changed, born);
    }

    /// <summary>A value of <typeparamref name="T"/> stored as an i32; one that is not defined is malformed.</summary>
    public T Enum<T>()
        where T : struct, Enum
    {
        int raw = I32();
        T value = System.Runtime.CompilerServices.Unsafe.As<int, T>(ref raw);
        if (!System.Enum.IsDefined(value))
        {
            Malformed = true;
        }

        return value;
    }

    /// <summary>A [Flags] value of <typeparamref name="T"/> stored as an i32 (any bits).</summary>
    public T Flags<T>()
        where T : struct, Enum
    {
        int raw = I32();
        return System.Runtime.CompilerServices.Unsafe.As<int, T>(ref raw);
    }

    public string? String()
    {
        uint length = U32();
        if (length == uint.MaxValue || Malformed)
        {
            return null;
        }

        ReadOnlySpan<byte> bytes = Take(length > int.MaxValue ? -1 : (int)length);
        if (Malformed)
        {
            return null;
        }

        if (!Utf8.IsValid(bytes))
        {
            Malformed = true;
            return null;
        }

        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>A string that must not be null.</summary>
    public string Text()
    {
        string? s = String();
        if (s is null)
        {
            Malformed = true;
        }

        return s ?? "";
    }

    /// <summary>Data written by <see cref="RecordWriter.Data"/>.</summary>
    public ReadOnlySpan<byte> Data()
    {
        uint length = U32();
        return Take(length > int.MaxValue ? -1 : (int)length);
    }

    /// <summary>A list of strings (a u32 count, at most one per remaining byte, then the strings).</summary>
    public string[] Strings()
    {
        uint count = U32();
        if (count > (uint)(_data.Length - _at))
        {
            Malformed = true;
            return [];
        }

        var list = new string[count];
        for (int i = 0; i < list.Length && !Malformed; i++)
        {
            list[i] = Text();
        }

        return list;
    }

    /// <summary>A list of u32 (a u32 count, then each): a count larger than the bytes left is malformed, before any allocation.</summary>
    public uint[] UInt32s()
    {
        uint count = U32();
        if (count > (uint)(_data.Length - _at) / 4)
        {
            Malformed = true;
            return [];
        }

        var list = new uint[count];
        for (int i = 0; i < list.Length; i++)
        {
            list[i] = U32();
        }

        return list;
    }

    /// <summary>A map of strings (a u32 count, then name and value of each).</summary>
    public Dictionary<string, string> Map()
    {
        uint count = U32();
        if (count > (uint)(_data.Length - _at))
        {
            Malformed = true;
            return new Dictionary<string, string>(StringComparer.Ordinal);
        }

        var map = new Dictionary<string, string>((int)count, StringComparer.Ordinal);
        for (int i = 0; i < count && !Malformed; i++)
        {
            string name = Text();
            string value = Text();
            if (!map.TryAdd(name, value))
            {
                Malformed = true;
            }
        }

        return map;
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (Malformed || count < 0 || count > _data.Length - _at)
        {
            Malformed = true;
            return [];
        }

        ReadOnlySpan<byte> s = _data.Slice(_at, count);
        _at += count;
        return s;
    }
}
