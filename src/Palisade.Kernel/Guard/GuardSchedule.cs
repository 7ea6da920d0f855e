using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Palisade.Kernel.Guard;

/// <summary>
/// One context's randomized wait between sweeps, uniform within [min, max]. A separate object so the guard's state
/// region can notice it being replaced (a reflective "starve the guard" attack swaps in a slower schedule).
/// </summary>
internal sealed class GuardSchedule
{
    private readonly long _minTicks;
    private readonly long _spanTicks;
    private ulong _state;

    internal GuardSchedule(TimeSpan min, TimeSpan max)
    {
        _minTicks = min.Ticks;
        _spanTicks = max.Ticks - min.Ticks;
        Span<byte> seed = stackalloc byte[8];
        RandomNumberGenerator.Fill(seed);
        _state = BinaryPrimitives.ReadUInt64LittleEndian(seed) | 1;
    }

    internal long MinTicks => _minTicks;

    internal long MaxTicks => _minTicks + _spanTicks;

    /// <summary>The next wait (xorshift64*; allocation-free, only ever used on its own context's thread).</summary>
    internal TimeSpan Next()
    {
        _state ^= _state >> 12;
        _state ^= _state << 25;
        _state ^= _state >> 27;
        ulong r = unchecked(_state * 0x2545F4914F6CDD1DUL);
        return TimeSpan.FromTicks(_minTicks + (_spanTicks == 0 ? 0 : (long)(r % (ulong)(_spanTicks + 1))));
    }
}
