using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Palisade.Kernel.Guard;

/// <summary>
/// The 128-bit secret that keys every region digest. Drawn once per guard from the system RNG, so an attacker who
/// patches a region cannot precompute a collision without first reading the key out of the guard.
/// </summary>
internal readonly struct GuardKey
{
    internal readonly ulong K0;
    internal readonly ulong K1;

    private GuardKey(ulong k0, ulong k1)
    {
        K0 = k0;
        K1 = k1;
    }

    internal static GuardKey CreateRandom()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        return new GuardKey(BinaryPrimitives.ReadUInt64LittleEndian(bytes), BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]));
    }
}

/// <summary>
/// Incremental SipHash-2-4 over the pieces of a region (stub bytes, a cell value, body bytes, table entries).
/// A struct passed by reference so a sweep allocates nothing; the kernel uses it to digest its own structures.
/// </summary>
internal struct GuardHasher
{
    private ulong _v0;
    private ulong _v1;
    private ulong _v2;
    private ulong _v3;
    private ulong _tail;
    private int _tailBytes;
    private long _length;

    internal GuardHasher(in GuardKey key)
    {
        _v0 = key.K0 ^ 0x736f6d6570736575UL;
        _v1 = key.K1 ^ 0x646f72616e646f6dUL;
        _v2 = key.K0 ^ 0x6c7967656e657261UL;
        _v3 = key.K1 ^ 0x7465646279746573UL;
        _tail = 0;
        _tailBytes = 0;
        _length = 0;
    }

    /// <summary>Adds a 64-bit value (a pointer, a counter, an identity).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal void Add(ulong value)
    {
        if (_tailBytes == 0)
        {
            Compress(value);
            _length += 8;
            return;
        }

        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        Add(bytes);
    }

    /// <summary>Adds a signed 64-bit value.</summary>
    internal void Add(long value) => Add(unchecked((ulong)value));

    /// <summary>
    /// Adds the identity of a delegate: its own identity, its target object's, its method, and the code pointers it
    /// really calls through (the runtime's <c>_methodPtr</c> and <c>_methodPtrAux</c>), so a callback swapped for
    /// another, or a delegate whose code pointer was rewritten in place (its cached method unchanged), changes the digest.
    /// </summary>
    internal void Add(Delegate? callback)
    {
        if (callback is null)
        {
            Add(0UL);
            return;
        }

        Add((ulong)(uint)RuntimeHelpers.GetHashCode(callback));
        Add((ulong)callback.Method.MethodHandle.Value);
        Add((ulong)(uint)RuntimeHelpers.GetHashCode(callback.Target ?? callback));
        Add((ulong)DelegateFields.MethodPtr(callback));
        Add((ulong)DelegateFields.MethodPtrAux(callback));
    }

    /// <summary>Adds raw bytes.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal void Add(ReadOnlySpan<byte> data)
    {
        _length += data.Length;
        while (data.Length > 0)
        {
            if (_tailBytes == 0 && data.Length >= 8)
            {
                Compress(BinaryPrimitives.ReadUInt64LittleEndian(data));
                data = data[8..];
                continue;
            }

            _tail |= (ulong)data[0] << (8 * _tailBytes);
            data = data[1..];
            if (++_tailBytes == 8)
            {
                Compress(_tail);
                _tail = 0;
                _tailBytes = 0;
            }
        }
    }

    /// <summary>Finishes the digest. The hasher must not be used afterwards.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal ulong Finish()
    {
        ulong last = _tail | ((ulong)(_length & 0xFF) << 56);
        Compress(last);
        _v2 ^= 0xFF;
        Round();
        Round();
        Round();
        Round();
        return _v0 ^ _v1 ^ _v2 ^ _v3;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Compress(ulong m)
    {
        _v3 ^= m;
        Round();
        Round();
        _v0 ^= m;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Round()
    {
        _v0 += _v1;
        _v1 = BitOperations.RotateLeft(_v1, 13);
        _v1 ^= _v0;
        _v0 = BitOperations.RotateLeft(_v0, 32);
        _v2 += _v3;
        _v3 = BitOperations.RotateLeft(_v3, 16);
        _v3 ^= _v2;
        _v0 += _v3;
        _v3 = BitOperations.RotateLeft(_v3, 21);
        _v3 ^= _v0;
        _v2 += _v1;
        _v1 = BitOperations.RotateLeft(_v1, 17);
        _v1 ^= _v2;
        _v2 = BitOperations.RotateLeft(_v2, 32);
    }
}

/// <summary>The runtime's private fields of a delegate that hold the code it calls (read, never written, by the guard).</summary>
internal static class DelegateFields
{
    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_methodPtr")]
    internal static extern ref nint MethodPtr(Delegate callback);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_methodPtrAux")]
    internal static extern ref nint MethodPtrAux(Delegate callback);
}
