using Palisade.Api;

namespace Palisade.Attacks.StateTamper;

/// <summary>
/// Package <c>deep-detour</c>: patches a protected kernel function far from its entry, where a guard that hashed only
/// the first bytes of a body would never look: a <c>jmp rel32</c> into the attacker's own method written
/// <c>offset</c> bytes (default 0x24A) into the compiled body of <c>FilterManager.PostOperation</c>, the loop that runs
/// every post callback. Unload puts the original bytes back.
/// </summary>
public sealed class DeepDetourDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        int offset = Convert.ToInt32(Parameter(context, "offset", "0x24A"), 16);
        nint body = Rootkit.BodyOf(Rootkit.KernelMethod("Palisade.Kernel.Io.FilterManager", "PostOperation"));
        nint at = body + offset;
        nint destination = Rootkit.StubOf(typeof(DeepDetourDriver).GetMethod(nameof(Landing), System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)!);
        long rel = (long)destination - ((long)at + 5);
        if (rel is < int.MinValue or > int.MaxValue)
        {
            throw new InvalidOperationException("The landing is out of rel32 reach.");
        }

        byte[] jump = new byte[5];
        jump[0] = 0xE9;
        BitConverter.TryWriteBytes(jump.AsSpan(1), (int)rel);
        byte[] original = Rootkit.Write(at, jump);
        return new Undo(() => Rootkit.Write(at, original));
    }

    private static void Landing() => Environment.FailFast("deep-detour: the patched path ran");
}
