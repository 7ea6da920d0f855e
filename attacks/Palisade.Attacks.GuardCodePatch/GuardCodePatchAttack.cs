using System.Runtime.CompilerServices;
using Palisade.Api;

namespace Palisade.Attacks.GuardCodePatch;

/// <summary>
/// Package <c>guard-code-patch</c>: detours guard context 0's own copy of the sweep
/// (GuardContext.Sweep&lt;GuardTag0&gt;) to a method that reports "all intact" without looking, the first step of
/// blinding a patch protection. In the compat flavor there is no guard, and the load fails with NotFound.
/// </summary>
public sealed class GuardCodePatchDriver : AttackDriver
{
    private static long s_blinded;

    /// <summary>How many sweeps the patch has skipped.</summary>
    public static long BlindedSweeps => Interlocked.Read(ref s_blinded);

    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        // Only a running guard is worth blinding: in the compat flavor there is none.
        Rootkit.FindObject(context, "Palisade.Kernel.Guard.KernelGuard");
        var sweep = Rootkit.KernelMethod(
            "Palisade.Kernel.Guard.GuardContext",
            "Sweep",
            Rootkit.KernelType("Palisade.Kernel.Guard.GuardTag0"));
        var replacement = typeof(GuardCodePatchDriver).GetMethod(nameof(BlindSweep), System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)!;
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
        byte[] original = Rootkit.Write(body, current);
        return new Undo(() => Rootkit.Write(body, original));
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static bool BlindSweep(object context)
    {
        Interlocked.Increment(ref s_blinded);
        return true;
    }
}
