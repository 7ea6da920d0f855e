namespace Palisade.Attacks.InlineDetour;

/// <summary>
/// Writes the 14-byte absolute form <c>FF 25 00000000 &lt;abs64&gt;</c> (jmp [rip+0] through the pointer that
/// follows) over the start of the kernel's system call recorder body, aimed at <see cref="SyscallHiding"/>'s
/// compiled body. This is the form detour libraries use when the target is out of rel32 reach.
/// </summary>
public sealed class AbsoluteJumpDetourAttack : IDisposable
{
    private nint _patched;
    private byte[]? _original;

    /// <summary>Installs the detour.</summary>
    public void Install()
    {
        nint body = Rootkit.BodyOf(SyscallHiding.Target);
        nint destination = Rootkit.BodyOf(SyscallHiding.Replacement);
        byte[] jump = new byte[14];
        jump[0] = 0xFF;
        jump[1] = 0x25;
        BitConverter.TryWriteBytes(jump.AsSpan(6), (long)destination);
        _original = Rootkit.Write(body, jump);
        _patched = body;
    }

    /// <summary>Restores the original bytes.</summary>
    public void Dispose()
    {
        if (_original is not null)
        {
            Rootkit.Write(_patched, _original);
            _original = null;
        }
    }
}
