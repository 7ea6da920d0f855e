using System.Buffers.Text;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// Builds /proc paths into a caller buffer. Interpolated UTF-8 formatting boxes its integer arguments
/// until the JIT optimizes it, which would put an allocation on every notification; this does not.
/// </summary>
internal ref struct Utf8Builder(Span<byte> buffer)
{
    private readonly Span<byte> _buffer = buffer;

    /// <summary>Bytes written so far.</summary>
    public int Length { get; private set; }

    /// <summary>Appends bytes.</summary>
    public Utf8Builder Append(ReadOnlySpan<byte> text)
    {
        text.CopyTo(_buffer[Length..]);
        Length += text.Length;
        return this;
    }

    /// <summary>Appends a decimal number.</summary>
    public Utf8Builder Append(int value)
    {
        bool ok = Utf8Formatter.TryFormat(value, _buffer[Length..], out int written);
        System.Diagnostics.Debug.Assert(ok);
        Length += written;
        return this;
    }
}
