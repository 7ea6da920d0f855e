using System.Buffers.Binary;
using Palisade.Api;
using Palisade.Kernel.Ports;

namespace Palisade.Kernel.Tests.Ports;

/// <summary>The wire format of docs/ports.md, byte for byte.</summary>
public sealed class PortProtocolTests
{
    [Fact]
    public void A_header_is_type_flags_zero_reserved_status_and_id_little_endian_in_sixteen_bytes()
    {
        byte[] record = new byte[PortProtocol.HeaderSize];
        PortProtocol.WriteHeader(record, new PortHeader(PortMessageType.Reply, PortFlags.ReplyWanted, 0xC0000022, 0x0102030405060708));

        Assert.Equal(new byte[] { 5, 1, 0, 0, 0x22, 0, 0, 0xC0, 8, 7, 6, 5, 4, 3, 2, 1 }, record);
    }

    [Fact]
    public void A_record_shorter_than_a_header_or_with_reserved_bytes_set_is_not_read()
    {
        byte[] record = new byte[PortProtocol.HeaderSize];
        PortProtocol.WriteHeader(record, new PortHeader(PortMessageType.Message, PortFlags.None, 0, 9));
        Assert.True(PortProtocol.TryReadHeader(record, out PortHeader h));
        Assert.Equal((PortMessageType.Message, 9UL), (h.Type, h.Id));

        Assert.False(PortProtocol.TryReadHeader(record.AsSpan(0, 15), out _));
        record[3] = 1;
        Assert.False(PortProtocol.TryReadHeader(record, out _));
    }

    [Fact]
    public void Hello_carries_version_1_the_signature_flag_the_message_limit_and_a_32_byte_challenge()
    {
        byte[] record = new byte[PortProtocol.MaximumRecord];
        byte[] challenge = [.. Enumerable.Range(1, 32).Select(i => (byte)i)];
        int n = PortProtocol.WriteHello(record, signatureRequired: true, challenge);

        Assert.Equal(16 + 40, n);
        Assert.Equal((byte)PortMessageType.Hello, record[0]);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(record.AsSpan(16)));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(record.AsSpan(18)));
        Assert.Equal((uint)PortOptions.MaximumMessageSize, BinaryPrimitives.ReadUInt32LittleEndian(record.AsSpan(20)));
        Assert.Equal(challenge, record.AsSpan(24, 32).ToArray());
    }

    [Fact]
    public void A_connect_payload_is_a_counted_context_then_a_counted_signature_and_nothing_else()
    {
        byte[] payload = [3, 0, 0, 0, (byte)'a', (byte)'b', (byte)'c', 2, 0, 0, 0, 0x30, 0x31];
        Assert.True(PortProtocol.TryReadConnect(payload, out ReadOnlySpan<byte> context, out ReadOnlySpan<byte> signature));
        Assert.Equal("abc"u8.ToArray(), context.ToArray());
        Assert.Equal(new byte[] { 0x30, 0x31 }, signature.ToArray());

        Assert.False(PortProtocol.TryReadConnect([.. payload, 0], out _, out _));
        Assert.False(PortProtocol.TryReadConnect(payload.AsSpan(0, payload.Length - 1), out _, out _));
        Assert.False(PortProtocol.TryReadConnect([0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0], out _, out _));
    }

    [Fact]
    public void A_client_signs_the_prefix_the_port_name_a_zero_byte_and_the_challenge()
    {
        byte[] signed = PortProtocol.SignedBytes("av", [9, 8]);

        Assert.Equal([.. "palisade-port-connect-v1\0av\0"u8, 9, 8], signed);
    }

    [Fact]
    public void A_signature_verifies_only_with_the_key_over_the_ports_challenge_and_bytes_that_are_no_signature_do_not_throw()
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        byte[] challenge = [.. Enumerable.Range(0, 32).Select(i => (byte)i)];
        byte[] signature = key.SignData(PortProtocol.SignedBytes("av", challenge), System.Security.Cryptography.HashAlgorithmName.SHA256,
            System.Security.Cryptography.DSASignatureFormat.Rfc3279DerSequence);

        Assert.True(PortProtocol.Verifies(key, "av", challenge, signature));
        Assert.False(PortProtocol.Verifies(key, "other", challenge, signature));
        Assert.False(PortProtocol.Verifies(key, "av", new byte[32], signature));
        Assert.False(PortProtocol.Verifies(key, "av", challenge, [0x30, 0x02, 0xFF]));
        Assert.False(PortProtocol.Verifies(key, "av", challenge, []));
    }
}
