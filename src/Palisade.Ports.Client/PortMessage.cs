namespace Palisade.Ports.Client;

/// <summary>A message the driver sent on the connection.</summary>
/// <param name="Id">The message's id; pass it to <see cref="PortClient.Reply"/> when <paramref name="WantsReply"/>.</param>
/// <param name="WantsReply">True when the driver waits for a reply.</param>
/// <param name="Data">The message's bytes.</param>
public sealed record PortMessage(ulong Id, bool WantsReply, byte[] Data);

/// <summary>The driver's reply to a message the client sent.</summary>
/// <param name="Status">The driver's status (an NTSTATUS-style code of Palisade.Api.Status: 0 is success; the high bit set is an error).</param>
/// <param name="Data">The reply's bytes.</param>
public sealed record PortReply(uint Status, byte[] Data)
{
    /// <summary>True for a success or informational status.</summary>
    public bool IsSuccess => Status >> 30 is 0 or 1;
}

/// <summary>A port refused the connection, broke the protocol, or the connection ended.</summary>
public sealed class PortException : Exception
{
    /// <summary>Makes the exception.</summary>
    /// <param name="message">What happened.</param>
    /// <param name="status">The kernel's status when it gave one (a refusal), else 0.</param>
    public PortException(string message, uint status = 0)
        : base(message) => Status = status;

    /// <summary>Makes the exception (for serializers and analyzers).</summary>
    public PortException()
        : this("the port connection failed")
    {
    }

    /// <summary>Makes the exception with an inner cause.</summary>
    /// <param name="message">What happened.</param>
    /// <param name="innerException">The cause.</param>
    public PortException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The kernel's status for a refused connect (for example 0xC0000022, access denied), or 0.</summary>
    public uint Status { get; }
}
