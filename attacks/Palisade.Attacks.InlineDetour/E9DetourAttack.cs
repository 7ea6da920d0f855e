using System.Reflection;

namespace Palisade.Attacks.InlineDetour;

/// <summary>
/// Writes <c>E9 rel32</c> (jmp near) over the first five bytes of a kernel function's compiled body, aimed at the
/// replacement's stub. Direct calls from compiled code take the detour too, since the body itself changed.
/// </summary>
internal static class E9DetourAttack
{
    /// <exception cref="InvalidOperationException">The replacement lies more than 2 GB away.</exception>
    internal static IDisposable Install(MethodInfo target, MethodInfo replacement)
    {
        nint body = Rootkit.BodyOf(target);
        nint destination = Rootkit.StubOf(replacement);
        long rel = (long)destination - ((long)body + 5);
        if (rel is < int.MinValue or > int.MaxValue)
        {
            throw new InvalidOperationException("The replacement is out of rel32 reach.");
        }

        byte[] jump = new byte[5];
        jump[0] = 0xE9;
        BitConverter.TryWriteBytes(jump.AsSpan(1), (int)rel);
        byte[] original = Rootkit.Write(body, jump);
        return new Undo(() => Rootkit.Write(body, original));
    }
}
