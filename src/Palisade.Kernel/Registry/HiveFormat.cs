// The hive file format.
//
//   header  : magic "PLSDHIVE" (8 bytes), version (u32 LE), CRC-32C of the first 12 bytes (u32 LE)
//   record* : payload length (u32 LE), CRC-32C of the length's 4 bytes and the payload (u32 LE), payload
//
// A payload is one logical operation, already validated against the tree when it was written, that names keys by
// their id (so a rename is one small record): its first byte is a HiveRecordKind. Strings are a u16 count of UTF-16
// code units followed by the units, little-endian. The file is only ever appended to, so the one place a record can
// be torn is the end: a record whose length runs past the end of the file or whose CRC fails ends the log, and the
// bytes after the last good record are discarded. A record with a good CRC that does not decode or does not apply
// to the tree is corruption, and the hive is refused.
using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Palisade.Kernel.Registry;

internal enum HiveRecordKind : byte
{
    /// <summary>Creates a chain of keys: count (u16), then per key its id (u64), parent id (u64) and name.</summary>
    CreateKeys = 1,

    /// <summary>Deletes a key that has no subkeys: id (u64).</summary>
    DeleteKey = 2,

    /// <summary>Renames a key within its parent: id (u64), new name.</summary>
    RenameKey = 3,

    /// <summary>Sets a value: key id (u64), type (u32), name, data length (u32), data.</summary>
    SetValue = 4,

    /// <summary>Deletes a value: key id (u64), name.</summary>
    DeleteValue = 5,
}

internal static class HiveFormat
{
    public const int HeaderSize = 16;
    public const int FrameSize = 8;
    public const uint Version = 1;

    /// <summary>Larger than any valid payload (1 MiB of data plus a 16383-character name, or a 512-key chain), so a
    /// length beyond it can only be a torn or garbage frame.</summary>
    public const int MaxPayloadLength = 2 << 20;

    private static ReadOnlySpan<byte> Magic => "PLSDHIVE"u8;

    public static void WriteHeader(Span<byte> header)
    {
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], Crc32C.Compute(header[..12]));
    }

    public static bool IsValidHeader(ReadOnlySpan<byte> file) =>
        file.Length >= HeaderSize
        && file[..8].SequenceEqual(Magic)
        && BinaryPrimitives.ReadUInt32LittleEndian(file[8..]) == Version
        && BinaryPrimitives.ReadUInt32LittleEndian(file[12..]) == Crc32C.Compute(file[..12]);

    /// <summary>Fills in the frame (length and CRC) in front of a payload already written at
    /// <c>record[FrameSize..]</c>, and returns the whole record.</summary>
    public static Span<byte> Seal(Span<byte> buffer, int payloadLength)
    {
        Span<byte> record = buffer[..(FrameSize + payloadLength)];
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)payloadLength);
        uint crc = Crc32C.Update(Crc32C.Start(), record[..4]);
        crc = Crc32C.Finish(Crc32C.Update(crc, record[FrameSize..]));
        BinaryPrimitives.WriteUInt32LittleEndian(record[4..], crc);
        return record;
    }

    /// <summary>
    /// Reads the record at the start of <paramref name="log"/>. Returns false when there is none, or it is torn or
    /// garbage (too short, a length out of range or past the end, a CRC mismatch).
    /// </summary>
    public static bool TryReadRecord(ReadOnlySpan<byte> log, out ReadOnlySpan<byte> payload)
    {
        payload = default;
        if (log.Length < FrameSize)
        {
            return false;
        }

        uint length = BinaryPrimitives.ReadUInt32LittleEndian(log);
        if (length == 0 || length > MaxPayloadLength || length > (uint)(log.Length - FrameSize))
        {
            return false;
        }

        uint crc = Crc32C.Update(Crc32C.Start(), log[..4]);
        crc = Crc32C.Finish(Crc32C.Update(crc, log.Slice(FrameSize, (int)length)));
        if (crc != BinaryPrimitives.ReadUInt32LittleEndian(log[4..]))
        {
            return false;
        }

        payload = log.Slice(FrameSize, (int)length);
        return true;
    }

    /// <summary>Bytes a string takes in a payload.</summary>
    public static int StringSize(int chars) => 2 + (2 * chars);
}

/// <summary>Writes a payload into a buffer the caller sized; overruns are bugs and caught by the span bounds.</summary>
internal ref struct HiveRecordWriter
{
    private readonly Span<byte> _buffer;

    public HiveRecordWriter(Span<byte> buffer) => _buffer = buffer;

    public int Length { get; private set; }

    public void WriteByte(byte value) => _buffer[Length++] = value;

    public void WriteUInt16(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer[Length..], value);
        Length += 2;
    }

    public void WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer[Length..], value);
        Length += 4;
    }

    public void WriteUInt64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer[Length..], value);
        Length += 8;
    }

    public void WriteString(ReadOnlySpan<char> value)
    {
        Debug.Assert(BitConverter.IsLittleEndian, "hive strings are UTF-16LE; Palisade runs on x86-64 only");
        Debug.Assert(value.Length <= ushort.MaxValue, "names are limited far below 65535 characters");
        WriteUInt16((ushort)value.Length);
        MemoryMarshal.AsBytes(value).CopyTo(_buffer[Length..]);
        Length += value.Length * 2;
    }

    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        WriteUInt32((uint)value.Length);
        value.CopyTo(_buffer[Length..]);
        Length += value.Length;
    }
}

/// <summary>Reads a payload; every read checks bounds and reports a short payload as false (corruption).</summary>
internal ref struct HiveRecordReader
{
    private ReadOnlySpan<byte> _rest;

    public HiveRecordReader(ReadOnlySpan<byte> payload) => _rest = payload;

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

    public bool TryReadUInt16(out ushort value)
    {
        if (!BinaryPrimitives.TryReadUInt16LittleEndian(_rest, out value))
        {
            return false;
        }

        _rest = _rest[2..];
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

    public bool TryReadString(out ReadOnlySpan<char> value)
    {
        value = default;
        if (!TryReadUInt16(out ushort chars) || _rest.Length < chars * 2)
        {
            return false;
        }

        value = MemoryMarshal.Cast<byte, char>(_rest[..(chars * 2)]);
        _rest = _rest[(chars * 2)..];
        return true;
    }

    public bool TryReadBytes(out ReadOnlySpan<byte> value)
    {
        value = default;
        if (!TryReadUInt32(out uint length) || (uint)_rest.Length < length)
        {
            return false;
        }

        value = _rest[..(int)length];
        _rest = _rest[(int)length..];
        return true;
    }
}
