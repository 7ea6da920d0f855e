// The wire format of a communication port (docs/ports.md is its specification; keep the two in step). Each message is
// one SOCK_SEQPACKET record: a 16-byte header, then the payload. Integers are little-endian.
//
//   offset 0  u8   type      (PortMessageType)
//   offset 1  u8   flags     (PortFlags: ReplyWanted on a Message)
//   offset 2  u16  reserved  (0)
//   offset 4  u32  status    (a Status code: the verdict of a Connected, the status of a Reply; 0 otherwise)
//   offset 8  u64  id        (a Message's id, echoed by its Reply; the connection's id in Connected)
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Palisade.Api;

namespace Palisade.Kernel.Ports;

/// <summary>What a port record is.</summary>
internal enum PortMessageType : byte
{
    /// <summary>Kernel to client, first: version, flags, limits and the challenge.</summary>
    Hello = 1,

    /// <summary>Client to kernel, once, in answer to Hello: its context and, when asked, its signature.</summary>
    Connect = 2,

    /// <summary>Kernel to client: the verdict on the connect (status) and the connection's id.</summary>
    Connected = 3,

    /// <summary>Either way: a message, which may want a reply.</summary>
    Message = 4,

    /// <summary>Either way: the reply to a message, with its id and a status.</summary>
    Reply = 5,
}

/// <summary>Flags of a record's header.</summary>
[Flags]
internal enum PortFlags : byte
{
    None = 0,

    /// <summary>On a Message: the sender waits for a Reply with the same id.</summary>
    ReplyWanted = 1,
}

/// <summary>A record's header.</summary>
internal readonly record struct PortHeader(PortMessageType Type, PortFlags Flags, uint Status, ulong Id);

internal static class PortProtocol
{
    /// <summary>The version this kernel speaks (in Hello).</summary>
    public const ushort Version = 1;

    /// <summary>The header's size.</summary>
    public const int HeaderSize = 16;

    /// <summary>The longest record: a header and the longest payload.</summary>
    public const int MaximumRecord = HeaderSize + PortOptions.MaximumMessageSize + 8;

    /// <summary>The challenge's size in Hello.</summary>
    public const int ChallengeSize = 32;

    /// <summary>Hello's flag: the client must sign the challenge.</summary>
    public const ushort SignatureRequired = 1;

    /// <summary>The Hello payload's size: version (u16), flags (u16), maximum message size (u32), challenge.</summary>
    public const int HelloPayload = 8 + ChallengeSize;

    /// <summary>What a signed client signs, before the challenge: this text, the port's name in UTF-8, a zero byte.</summary>
    public const string SignedPrefix = "palisade-port-connect-v1\0";

    public static void WriteHeader(Span<byte> into, in PortHeader h)
    {
        into[0] = (byte)h.Type;
        into[1] = (byte)h.Flags;
        BinaryPrimitives.WriteUInt16LittleEndian(into[2..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(into[4..], h.Status);
        BinaryPrimitives.WriteUInt64LittleEndian(into[8..], h.Id);
    }

    /// <summary>Reads a record's header; false when the record is shorter than one or its reserved bytes are not zero.</summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> record, out PortHeader header)
    {
        header = default;
        if (record.Length < HeaderSize || BinaryPrimitives.ReadUInt16LittleEndian(record[2..]) != 0)
        {
            return false;
        }

        header = new PortHeader((PortMessageType)record[0], (PortFlags)record[1], BinaryPrimitives.ReadUInt32LittleEndian(record[4..]), BinaryPrimitives.ReadUInt64LittleEndian(record[8..]));
        return true;
    }

    /// <summary>Writes a whole record (header and payload) into <paramref name="into"/>; its length.</summary>
    public static int Write(Span<byte> into, in PortHeader h, ReadOnlySpan<byte> payload)
    {
        WriteHeader(into, in h);
        payload.CopyTo(into[HeaderSize..]);
        return HeaderSize + payload.Length;
    }

    /// <summary>Writes the Hello record; its length.</summary>
    public static int WriteHello(Span<byte> into, bool signatureRequired, ReadOnlySpan<byte> challenge)
    {
        WriteHeader(into, new PortHeader(PortMessageType.Hello, PortFlags.None, 0, 0));
        Span<byte> p = into[HeaderSize..];
        BinaryPrimitives.WriteUInt16LittleEndian(p, Version);
        BinaryPrimitives.WriteUInt16LittleEndian(p[2..], signatureRequired ? SignatureRequired : (ushort)0);
        BinaryPrimitives.WriteUInt32LittleEndian(p[4..], PortOptions.MaximumMessageSize);
        challenge.CopyTo(p[8..]);
        return HeaderSize + HelloPayload;
    }

    /// <summary>
    /// Reads a Connect record's payload: a u32 length and the context, then a u32 length and the signature (DER), each
    /// length at most <see cref="PortOptions.MaximumMessageSize"/>, nothing after them.
    /// </summary>
    public static bool TryReadConnect(ReadOnlySpan<byte> payload, out ReadOnlySpan<byte> context, out ReadOnlySpan<byte> signature)
    {
        context = signature = default;
        if (!TryTake(ref payload, out context) || !TryTake(ref payload, out signature))
        {
            return false;
        }

        return payload.IsEmpty;
    }

    private static bool TryTake(scoped ref ReadOnlySpan<byte> payload, out ReadOnlySpan<byte> field)
    {
        field = default;
        if (payload.Length < 4)
        {
            return false;
        }

        uint length = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        if (length > PortOptions.MaximumMessageSize || length > payload.Length - 4)
        {
            return false;
        }

        field = payload.Slice(4, (int)length);
        payload = payload[(4 + (int)length)..];
        return true;
    }

    /// <summary>The bytes a signed client signs: <see cref="SignedPrefix"/>, the port's name, a zero byte, the challenge.</summary>
    public static byte[] SignedBytes(string portName, ReadOnlySpan<byte> challenge) =>
        [.. Encoding.ASCII.GetBytes(SignedPrefix), .. Encoding.UTF8.GetBytes(portName), 0, .. challenge];

    /// <summary>True when <paramref name="signature"/> (ECDSA P-256 over SHA-256, DER) is <paramref name="key"/>'s over
    /// the port's challenge; false for any other bytes, malformed ones included.</summary>
    public static bool Verifies(ECDsa key, string portName, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> signature)
    {
        try
        {
            return !signature.IsEmpty && key.VerifyData(SignedBytes(portName, challenge), signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        }
        catch (CryptographicException)
        {
            return false; // Bytes that are no DER signature at all: a client's error, never the kernel's.
        }
    }
}
