// The wire format of the kernel's control channel (docs/control.md): length-prefixed frames over a Unix stream
// socket, each one message whose first byte says what it is. Integers are little-endian; a string is a u32 count of
// UTF-16 code units then the units (the registry's own encoding); an optional string is a u8 presence flag then the
// string; bytes are a u32 length then the bytes. A frame that does not decode closes the connection.
using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Palisade.Api;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Control;

/// <summary>The first byte of every control message.</summary>
internal enum ControlMessage : byte
{
    /// <summary>Client to kernel: perform one registry operation (as a registry system service of the administrator).</summary>
    RegistryRequest = 1,

    /// <summary>Client to kernel: send a copy of the registry, then every change after it, in order (another kernel
    /// following this one's hive).</summary>
    Subscribe = 2,

    /// <summary>Client to kernel: stop the system with bug check 0xE2 MANUALLY_INITIATED_CRASH (an administrator's
    /// <c>palisade bugcheck</c>), for the reason given.</summary>
    BugCheck = 3,

    /// <summary>Kernel to client: the outcome of a <see cref="RegistryRequest"/>.</summary>
    RegistryResponse = 0x81,

    /// <summary>Kernel to subscriber: one change (a registry operation that succeeded), numbered; numbered 0 within
    /// the copy that opens a subscription.</summary>
    Change = 0x82,

    /// <summary>Kernel to subscriber: the copy is complete, up to and including the change numbered here.</summary>
    SnapshotEnd = 0x83,

    /// <summary>Kernel to client: the answer to a <see cref="BugCheck"/>; on success the kernel stops right after
    /// sending it, and the connection ends when its process does.</summary>
    BugCheckResponse = 0x84,
}

internal static class ControlProtocol
{
    /// <summary>Larger than any valid message (1 MiB of value data, or the names of a large key).</summary>
    public const int MaxFrame = 16 << 20;

    /// <summary>Most UTF-16 code units in the reason of a <see cref="ControlMessage.BugCheck"/>.</summary>
    public const int MaxReason = 512;

    /// <summary>A reason the kernel accepts: at most <see cref="MaxReason"/> code units and no control characters (it
    /// is printed on the stop screen, a terminal).</summary>
    public static bool IsValidReason(string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        if (reason.Length > MaxReason)
        {
            return false;
        }

        foreach (char c in reason)
        {
            if (char.IsControl(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A request to stop the system: the reason ("" for none).</summary>
    public static byte[] BugCheck(string reason)
    {
        var w = new ControlWriter(8 + (reason.Length * 2));
        w.WriteByte((byte)ControlMessage.BugCheck);
        w.WriteString(reason);
        return w.ToArray();
    }

    /// <summary>The answer to a request to stop the system: its status.</summary>
    public static byte[] BugCheckResponse(Status status)
    {
        var w = new ControlWriter(5);
        w.WriteByte((byte)ControlMessage.BugCheckResponse);
        w.WriteUInt32(status.Code);
        return w.ToArray();
    }

    /// <summary>Decodes what <see cref="BugCheckResponse"/> wrote; false when it is malformed.</summary>
    public static bool TryReadBugCheckResponse(ReadOnlySpan<byte> payload, out Status status)
    {
        status = default;
        var reader = new ControlReader(payload);
        if (!reader.TryReadByte(out byte kind) || kind != (byte)ControlMessage.BugCheckResponse
            || !reader.TryReadUInt32(out uint code) || !reader.AtEnd)
        {
            return false;
        }

        status = new Status(code);
        return true;
    }

    /// <summary>Reads one frame; false at a clean end of the stream or for a length out of range.</summary>
    /// <exception cref="IOException">The connection failed or ended inside a frame.</exception>
    public static bool TryReadFrame(Stream stream, out byte[] payload)
    {
        payload = [];
        Span<byte> header = stackalloc byte[4];
        int got = stream.ReadAtLeast(header, 4, throwOnEndOfStream: false);
        if (got == 0)
        {
            return false;
        }

        if (got < 4)
        {
            throw new EndOfStreamException("the control connection ended inside a frame header");
        }

        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (length == 0 || length > MaxFrame)
        {
            return false;
        }

        payload = new byte[length];
        stream.ReadExactly(payload);
        return true;
    }

    /// <summary>Writes one frame: its length, then the payload.</summary>
    public static void WriteFrame(Stream stream, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)payload.Length);
        stream.Write(header);
        stream.Write(payload);
        stream.Flush();
    }

    /// <summary>A registry operation: operation, key path, value name, new name, value type, data.</summary>
    public static void WriteRequest(ref ControlWriter w, RegistryRequest r)
    {
        w.WriteByte((byte)r.Operation);
        w.WriteString(r.KeyPath);
        w.WriteOptionalString(r.ValueName);
        w.WriteOptionalString(r.NewName);
        w.WriteUInt32((uint)r.ValueType);
        w.WriteBytes(r.Data.Span);
    }

    /// <summary>Decodes what <see cref="WriteRequest"/> wrote; false when it is malformed.</summary>
    public static bool TryReadRequest(ref ControlReader reader, out RegistryRequest? request)
    {
        request = null;
        if (!reader.TryReadByte(out byte op) || !Enum.IsDefined((RegistryOperation)op)
            || !reader.TryReadString(out string? key) || !reader.TryReadOptionalString(out string? name)
            || !reader.TryReadOptionalString(out string? newName) || !reader.TryReadUInt32(out uint type)
            || !reader.TryReadBytes(out byte[]? data))
        {
            return false;
        }

        request = new RegistryRequest();
        request.Reset((RegistryOperation)op, key!);
        request.ValueName = name;
        request.NewName = newName;
        request.ValueType = (RegistryValueType)type;
        request.Data = data;
        return true;
    }

    /// <summary>The outcome of a request: status, created, result type and data, names, and the number of the
    /// change it made (0 when it changed nothing).</summary>
    public static byte[] Response(RegistryRequest r, Status status, ulong change)
    {
        var w = new ControlWriter(256 + r.ResultData.Length);
        w.WriteByte((byte)ControlMessage.RegistryResponse);
        w.WriteUInt32(status.Code);
        w.WriteByte(r.Created ? (byte)1 : (byte)0);
        w.WriteUInt32((uint)r.ResultType);
        w.WriteBytes(r.ResultData.Span);
        w.WriteUInt32((uint)r.Names.Count);
        foreach (string name in r.Names)
        {
            w.WriteString(name);
        }

        w.WriteUInt64(change);
        return w.ToArray();
    }

    /// <summary>Decodes a response into <paramref name="r"/>'s results; false when it is malformed.</summary>
    public static bool TryReadResponse(ReadOnlySpan<byte> payload, RegistryRequest r, out Status status, out ulong change)
    {
        status = default;
        change = 0;
        var reader = new ControlReader(payload);
        if (!reader.TryReadByte(out byte kind) || kind != (byte)ControlMessage.RegistryResponse
            || !reader.TryReadUInt32(out uint code) || !reader.TryReadByte(out byte created)
            || !reader.TryReadUInt32(out uint type) || !reader.TryReadBytes(out byte[]? data)
            || !reader.TryReadUInt32(out uint count) || count > ControlProtocol.MaxFrame / 4)
        {
            return false;
        }

        var names = new List<string>((int)count);
        for (uint i = 0; i < count; i++)
        {
            if (!reader.TryReadString(out string? name))
            {
                return false;
            }

            names.Add(name!);
        }

        if (!reader.TryReadUInt64(out change) || !reader.AtEnd)
        {
            return false;
        }

        status = new Status(code);
        r.Created = created != 0;
        r.ResultType = (RegistryValueType)type;
        r.ResultData = data;
        r.Names = names;
        return true;
    }

    /// <summary>One numbered change, as a subscriber receives it.</summary>
    public static byte[] Change(ulong number, RegistryRequest r)
    {
        var w = new ControlWriter(64 + (r.KeyPath.Length * 2) + r.Data.Length);
        w.WriteByte((byte)ControlMessage.Change);
        w.WriteUInt64(number);
        WriteRequest(ref w, r);
        return w.ToArray();
    }
}

/// <summary>Builds one message.</summary>
internal struct ControlWriter
{
    private readonly ArrayBufferWriter<byte> _buffer;

    public ControlWriter(int capacity) => _buffer = new ArrayBufferWriter<byte>(Math.Max(capacity, 16));

    public readonly void WriteByte(byte value) => _buffer.Write([value]);

    public readonly void WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.GetSpan(4), value);
        _buffer.Advance(4);
    }

    public readonly void WriteUInt64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
    }

    public readonly void WriteString(string value)
    {
        WriteUInt32((uint)value.Length);
        _buffer.Write(MemoryMarshal.AsBytes(value.AsSpan()));
    }

    public readonly void WriteOptionalString(string? value)
    {
        WriteByte(value is null ? (byte)0 : (byte)1);
        if (value is not null)
        {
            WriteString(value);
        }
    }

    public readonly void WriteBytes(ReadOnlySpan<byte> value)
    {
        WriteUInt32((uint)value.Length);
        _buffer.Write(value);
    }

    public readonly byte[] ToArray() => _buffer.WrittenSpan.ToArray();
}

/// <summary>Reads one message; every read checks bounds and reports a short message as false.</summary>
internal ref struct ControlReader
{
    private ReadOnlySpan<byte> _rest;

    public ControlReader(ReadOnlySpan<byte> payload) => _rest = payload;

    public readonly bool AtEnd => _rest.IsEmpty;

    public bool TryReadByte(out byte value)
    {
        value = 0;
        if (_rest.IsEmpty)
        {
            return false;
        }

        value = _rest[0];
        _rest = _rest[1..];
        return true;
    }

    public bool TryReadUInt32(out uint value)
    {
        if (!BinaryPrimitives.TryReadUInt32LittleEndian(_rest, out value))
        {
            return false;
        }

        _rest = _rest[4..];
        return true;
    }

    public bool TryReadUInt64(out ulong value)
    {
        if (!BinaryPrimitives.TryReadUInt64LittleEndian(_rest, out value))
        {
            return false;
        }

        _rest = _rest[8..];
        return true;
    }

    public bool TryReadString(out string? value)
    {
        value = null;
        if (!TryReadUInt32(out uint chars) || (ulong)_rest.Length < chars * 2UL)
        {
            return false;
        }

        value = new string(MemoryMarshal.Cast<byte, char>(_rest[..(int)(chars * 2)]));
        _rest = _rest[(int)(chars * 2)..];
        return true;
    }

    public bool TryReadOptionalString(out string? value)
    {
        value = null;
        return TryReadByte(out byte present) && present <= 1 && (present == 0 || TryReadString(out value));
    }

    public bool TryReadBytes(out byte[]? value)
    {
        value = null;
        if (!TryReadUInt32(out uint length) || (uint)_rest.Length < length)
        {
            return false;
        }

        value = _rest[..(int)length].ToArray();
        _rest = _rest[(int)length..];
        return true;
    }
}
