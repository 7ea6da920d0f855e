using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Palisade.Kernel.Guard;

/// <summary>
/// One context's randomized wait between sweeps, uniform within [min, max]. Each wait is drawn from the operating
/// system's random generator and nothing of it is kept: there is no generator state in the process from which code
/// running beside the guard could predict the next sweep and tamper only between sweeps. A separate object so the
/// guard's state region can notice it being replaced (a reflective "starve the guard" attack swaps in a slower schedule).
/// </summary>
internal sealed class GuardSchedule
{
    private readonly long _minTicks;
    private readonly long _spanTicks;

    internal GuardSchedule(TimeSpan min, TimeSpan max)
    {
        _minTicks = min.Ticks;
        _spanTicks = max.Ticks - min.Ticks;
    }

    internal long MinTicks => _minTicks;

    internal long MaxTicks => _minTicks + _spanTicks;

    /// <summary>The next wait (getrandom through RandomNumberGenerator; allocation-free).</summary>
    internal TimeSpan Next()
    {
        if (_spanTicks == 0)
        {
            return TimeSpan.FromTicks(_minTicks);
        }

        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        ulong r = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        return TimeSpan.FromTicks(_minTicks + (long)(r % (ulong)(_spanTicks + 1)));
    }
}
