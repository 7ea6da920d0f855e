using System.Reflection;

namespace Palisade.Attacks.InlineDetour;

/// <summary>
/// Writes the 14-byte absolute form <c>FF 25 00000000 &lt;abs64&gt;</c> (jmp [rip+0] through the pointer that
/// follows) over the start of a kernel function's body, aimed at the replacement's compiled body. This is the form
/// detour libraries use when the target is out of rel32 reach.
/// </summary>
internal static class AbsoluteJumpDetourAttack
{
    internal static IDisposable Install(MethodInfo target, MethodInfo replacement)
    {
        nint body = Rootkit.BodyOf(target);
        nint destination = Rootkit.BodyOf(replacement);
        byte[] jump = new byte[14];
        jump[0] = 0xFF;
        jump[1] = 0x25;
        BitConverter.TryWriteBytes(jump.AsSpan(6), (long)destination);
        byte[] original = Rootkit.Write(body, jump);
        return new Undo(() => Rootkit.Write(body, original));
    }
}
