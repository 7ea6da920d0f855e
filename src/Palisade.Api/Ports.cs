using System;
using System.Collections.Generic;

namespace Palisade.Api;

/// <summary>
/// Communication ports (the counterpart of <c>FltCreateCommunicationPort</c>): a driver creates a named port, the
/// kernel listens on a Unix socket for it, and user-mode programs — inside or outside <c>palisade run</c>, in any
/// language — connect to it and exchange messages with the driver, each way, with optional replies. The wire format a
/// client speaks is documented in docs/ports.md; a .NET client ships as <c>Palisade.Ports.Client</c>.
/// </summary>
/// <remarks>
/// <para><b>Where.</b> A port named NAME listens at <c>$PALISADE_HOME/ports/NAME</c> (<see cref="IPort.Path"/>), a
/// <c>SOCK_SEQPACKET</c> socket of mode 0666 in a folder of mode 0711 that the kernel owns: no guest can replace,
/// rename or remove either, whatever the drivers decide; a guest may connect when the port's policy admits it. Port
/// names are unique on the home: two runs on one home cannot both create NAME.</para>
/// <para><b>Who may connect</b> is the port's policy (<see cref="PortOptions"/>): the client's user and group as Linux
/// attaches them to the client's connect message (<c>SCM_CREDENTIALS</c>), optionally a signature by a key the driver
/// names, and the driver's own <see cref="PortCallbacks.Connect"/> callback. The kernel enforces it before the driver
/// hears of the client.</para>
/// <para><b>Bounded.</b> No call on a port waits for a client longer than its timeout: a client that does not read makes
/// <see cref="IPortConnection.Send(ReadOnlySpan{byte}, TimeSpan)"/> return <see cref="Status.IoTimeout"/>, and a client
/// with <see cref="PortOptions.MaximumPendingReplyLimit"/> replies owed makes further sends that want a reply return
/// <see cref="Status.InsufficientResources"/>.</para>
/// <para>Every port and connection of a driver is closed when it unloads.</para>
/// </remarks>
[ApiInfo(ApiArea.Ports, "1.0", ApiState.Draft, "antivirus with a scanning service", "interactive firewall prompt")]
public interface IPortManager
{
    /// <summary>
    /// Creates a named port and starts listening on its socket.
    /// </summary>
    /// <param name="name">The port's name: 1 to 64 of <c>A-Z a-z 0-9 . - _</c>, starting with a letter or a digit. It
    /// is the file name of the socket under <c>$PALISADE_HOME/ports</c>.</param>
    /// <param name="options">Who may connect, how many at once, and whether clients are excluded from the driver's file
    /// callbacks. Must not be null; checked here.</param>
    /// <param name="callbacks">What the kernel calls when a client connects, sends a message or goes away. Must not be
    /// null; each callback may be null.</param>
    /// <param name="port">On success, the port; otherwise null.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> for a null argument or an option
    /// out of range (see <see cref="PortOptions"/>: a limit outside its range, a user or group id list longer than 64, a
    /// <see cref="PortOptions.ClientKey"/> that is not an ECDSA P-256 public key); <see cref="Status.ObjectNameInvalid"/>
    /// for a malformed name; <see cref="Status.ObjectNameCollision"/> when a port of that name is listening (this driver's,
    /// another driver's, or another run's on the same home); <see cref="Status.TooManyRegistrations"/> when the driver
    /// already has 16 ports; <see cref="Status.NotSupported"/> when the kernel has no home to put sockets in or the
    /// ports folder is unfit (it says why on stderr); <see cref="Status.InsufficientResources"/> when the socket cannot be
    /// made; <see cref="Status.InvalidDeviceState"/> once the driver is unloading.</returns>
    /// <remarks>
    /// A socket file left at the port's path by a run that ended is replaced; one with a live listener is not. The
    /// port listens from the moment this call returns until <see cref="IPort.Close"/> or the driver's unload, which
    /// remove the socket file.
    /// </remarks>
    Status CreatePort(string name, PortOptions options, PortCallbacks callbacks, out IPort? port);

    /// <summary>
    /// Excludes a process from this driver's file callbacks (minifilter pre and post callbacks of every operation):
    /// its file operations pass the driver's filters as if they were not registered, and reach the other drivers' as
    /// usual. For the processes of a scanning service, whose reads of the files it scans must not come back to the
    /// driver that asked for the scan.
    /// </summary>
    /// <param name="processId">A live process (a guest's process id as callbacks report it).</param>
    /// <returns><see cref="Status.Success"/> (also when it was already excluded); <see cref="Status.InvalidParameter"/>
    /// for an id of 0 or less; <see cref="Status.NotFound"/> when no such process is alive;
    /// <see cref="Status.InsufficientResources"/> when the driver already excludes 256 processes;
    /// <see cref="Status.InvalidDeviceState"/> once the driver is unloading.</returns>
    /// <remarks>The exclusion is keyed to that very process, not to its number: it ends when the process exits (a later
    /// process that reuses the id is not excluded), on <see cref="IncludeProcess"/>, or when the driver unloads. Its
    /// children are not excluded. Applies to operations that start after this call returns.</remarks>
    Status ExcludeProcess(int processId);

    /// <summary>Ends an exclusion made with <see cref="ExcludeProcess"/>: the process's file operations reach the driver's
    /// callbacks again, from operations that start after this call returns.</summary>
    /// <param name="processId">The excluded process.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.NotFound"/> when the driver does not exclude it (an
    /// exclusion that a connection made with <see cref="PortOptions.ExcludeClientsFromFileCallbacks"/> ends with the
    /// connection, not here); <see cref="Status.InvalidDeviceState"/> once the driver is unloading.</returns>
    Status IncludeProcess(int processId);
}

/// <summary>
/// A port's policy: how many clients at once, who may connect, and whether its clients are kept out of the driver's
/// file callbacks. Checked by <see cref="IPortManager.CreatePort"/>.
/// </summary>
/// <remarks>
/// A client is admitted when its user id is in <see cref="AllowedUserIds"/> or its group id is in
/// <see cref="AllowedGroupIds"/> (see <see cref="IPortConnection.UserId"/> for where they come from); when both lists are
/// empty, only root and the user the kernel runs as are admitted. With a <see cref="ClientKey"/>, the client
/// must also sign the kernel's challenge with the matching private key (docs/ports.md, the connect handshake).
/// </remarks>
[ApiInfo(ApiArea.Ports, "1.0", ApiState.Draft, "antivirus with a scanning service", "interactive firewall prompt")]
public sealed class PortOptions
{
    /// <summary>The most connections a port may allow at once.</summary>
    public const int MaximumConnectionsLimit = 256;

    /// <summary>The most user ids, and the most group ids, a policy may list.</summary>
    public const int AllowedIdsLimit = 64;

    /// <summary>The longest message, reply or connection context in bytes, either way.</summary>
    public const int MaximumMessageSize = 65536;

    /// <summary>The most messages the driver may have sent on one connection whose replies are still owed.</summary>
    public const int MaximumPendingReplyLimit = 64;

    /// <summary>How many clients may be connected at once: 1 to <see cref="MaximumConnectionsLimit"/>. A client beyond it
    /// is refused with <see cref="Status.InsufficientResources"/>. Default 1.</summary>
    public int MaximumConnections { get; init; } = 1;

    /// <summary>User ids admitted; at most <see cref="AllowedIdsLimit"/>. Null counts as empty.</summary>
    public IReadOnlyList<uint>? AllowedUserIds { get; init; }

    /// <summary>Group ids admitted; at most <see cref="AllowedIdsLimit"/>. Null counts as empty.</summary>
    public IReadOnlyList<uint>? AllowedGroupIds { get; init; }

    /// <summary>
    /// When not null, only a client holding the private key of this public key may connect: an ECDSA key on the NIST
    /// P-256 curve, as its DER-encoded SubjectPublicKeyInfo (what <c>ExportSubjectPublicKeyInfo</c> returns, the body of
    /// a PEM <c>PUBLIC KEY</c>). The client signs the kernel's challenge with ECDSA over SHA-256.
    /// </summary>
    public byte[]? ClientKey { get; init; }

    /// <summary>
    /// When true, the process of each connected client (the process that sent the connect message, as the socket's
    /// <c>SCM_CREDENTIALS</c> give it) is excluded from this driver's file callbacks while its connection lasts, as by
    /// <see cref="IPortManager.ExcludeProcess"/>: a scanning service's reads of the files it scans do not come back to
    /// the driver. Default false.
    /// </summary>
    public bool ExcludeClientsFromFileCallbacks { get; init; }
}

/// <summary>The callbacks of a port. Each may be null.</summary>
/// <remarks>
/// <para><b>Threading.</b> Each connection has a kernel thread of its own that reads the client's messages: the
/// connect callback, every message callback of the connection and its disconnect callback run there, one at a time and
/// in order. Callbacks of different connections may run at the same time. A slow callback delays only its own
/// client.</para>
/// <para><b>Containment.</b> A callback that throws is reported as a <c>driver-fault</c> event: a connect callback's
/// throw refuses the client, a message callback's throw is answered with <see cref="Status.CallbackFaulted"/>. The
/// kernel is never stopped by it.</para>
/// </remarks>
[ApiInfo(ApiArea.Ports, "1.0", ApiState.Draft, "antivirus with a scanning service", "interactive firewall prompt")]
public sealed class PortCallbacks
{
    /// <summary>Called when an admitted client connects, before the client is told it is connected. An error status
    /// refuses the client (it receives that status); null admits every client the policy admits.</summary>
    public PortConnectCallback? Connect { get; init; }

    /// <summary>Called once when a connection that <see cref="Connect"/> accepted ends, whichever side ended it; not
    /// called for the connections the kernel ends because the driver unloads.</summary>
    public PortDisconnectCallback? Disconnect { get; init; }

    /// <summary>Called for each message a client sends. Null answers every message that wants a reply with
    /// <see cref="Status.NotSupported"/>.</summary>
    public PortMessageCallback? Message { get; init; }
}

/// <summary>A client connects (<c>ConnectNotifyCallback</c>).</summary>
/// <param name="connection">The new connection: who the client is. It is not connected yet: it can send, and the
/// client's messages are read, once this callback has returned success.</param>
/// <param name="context">The bytes the client sent with its connect message (at most
/// <see cref="PortOptions.MaximumMessageSize"/>; empty when none); valid during the call only.</param>
/// <returns><see cref="Status.Success"/> to accept the client; an error status to refuse it, which the client
/// receives.</returns>
[ApiInfo(ApiArea.Ports, "1.0", ApiState.Draft, "antivirus with a scanning service", "interactive firewall prompt")]
public delegate Status PortConnectCallback(IPortConnection connection, ReadOnlySpan<byte> context);

/// <summary>A connection ended (<c>DisconnectNotifyCallback</c>): the client closed its socket or exited, the driver
/// closed the connection or the port, or the driver is unloading.</summary>
/// <param name="connection">The connection, no longer connected.</param>
[ApiInfo(ApiArea.Ports, "1.0", ApiState.Draft, "antivirus with a scanning service", "interactive firewall prompt")]
public delegate void PortDisconnectCallback(IPortConnection connection);

/// <summary>A client sent a message (<c>MessageNotifyCallback</c>).</summary>
/// <param name="connection">The connection it came on.</param>
/// <param name="message">The message's bytes; valid during the call only.</param>
/// <param name="reply">Where to write the reply when the client wants one (up to
/// <see cref="PortOptions.MaximumMessageSize"/> bytes); empty when it does not.</param>
/// <param name="replyLength">How many bytes of <paramref name="reply"/> the reply holds; 0 to <c>reply.Length</c>.</param>
/// <returns>The status the client receives in the reply (a value outside 0 to <c>reply.Length</c> in
/// <paramref name="replyLength"/> makes it <see cref="Status.BufferTooSmall"/>, with no bytes); ignored when the client
/// wants no reply.</returns>
[ApiInfo(ApiArea.Ports, "1.0", ApiState.Draft, "antivirus with a scanning service", "interactive firewall prompt")]
public delegate Status PortMessageCallback(IPortConnection connection, ReadOnlySpan<byte> message, Span<byte> reply, out int replyLength);

/// <summary>A port a driver created (the server port of <c>FltCreateCommunicationPort</c>).</summary>
[ApiInfo(ApiArea.Ports, "1.0", ApiState.Draft, "antivirus with a scanning service", "interactive firewall prompt")]
public interface IPort
{
    /// <summary>The port's name.</summary>
    string Name { get; }

    /// <summary>The absolute path of the port's socket, which clients connect to.</summary>
    string Path { get; }

    /// <summary>The connections open now, in the order they were accepted; a snapshot.</summary>
    IReadOnlyList<IPortConnection> Connections { get; }

    /// <summary>Stops listening and removes the socket file (<c>FltCloseCommunicationPort</c>). Connections already
    /// accepted stay until they are closed.</summary>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidDeviceState"/> when the port was already closed.</returns>
    Status Close();
}

/// <summary>One client's connection to a port (the client port of <c>FltCreateCommunicationPort</c>'s connect
/// callback).</summary>
[ApiInfo(ApiArea.Ports, "1.0", ApiState.Draft, "antivirus with a scanning service", "interactive firewall prompt")]
public interface IPortConnection
{
    /// <summary>A number that names the connection, unique for the life of the kernel; never 0.</summary>
    long Id { get; }

    /// <summary>The port it belongs to.</summary>
    IPort Port { get; }

    /// <summary>The client's process id (in the kernel's pid namespace): the process that sent the connect message, from
    /// the <c>SCM_CREDENTIALS</c> Linux attaches to it with the sender's own pid (a process may claim another pid only
    /// with <c>CAP_SYS_ADMIN</c>).</summary>
    int ProcessId { get; }

    /// <summary>The client's user id: the real uid of the process that sent the connect message, from the same
    /// <c>SCM_CREDENTIALS</c> (a process may claim its effective or saved uid instead, another only with
    /// <c>CAP_SETUID</c>). Not <c>SO_PEERCRED</c>: a guest's connect is made for it by the kernel's host, whose
    /// credentials the socket would report.</summary>
    uint UserId { get; }

    /// <summary>The client's group id: the real gid of the process that sent the connect message (likewise; another only
    /// with <c>CAP_SETGID</c>).</summary>
    uint GroupId { get; }

    /// <summary>True until the connection ends.</summary>
    bool IsConnected { get; }

    /// <summary>
    /// Sends a message that wants no reply (<c>FltSendMessage</c> without a reply buffer).
    /// </summary>
    /// <param name="message">The message; at most <see cref="PortOptions.MaximumMessageSize"/> bytes, may be empty.</param>
    /// <param name="timeout">How long to wait for room in the client's socket: zero to not wait, at most 5 minutes.</param>
    /// <returns><see cref="Status.Success"/> once the message is in the client's socket; <see cref="Status.IoTimeout"/>
    /// when the client's socket stayed full (the client does not read) for <paramref name="timeout"/>;
    /// <see cref="Status.InvalidParameter"/> for a message too long or a timeout out of range;
    /// <see cref="Status.InvalidDeviceState"/> when the connection has ended.</returns>
    Status Send(ReadOnlySpan<byte> message, TimeSpan timeout);

    /// <summary>
    /// Sends a message and waits for the client's reply (<c>FltSendMessage</c> with a reply buffer). Callable from any
    /// thread, including a file callback (only that guest's operation waits).
    /// </summary>
    /// <param name="message">The message; at most <see cref="PortOptions.MaximumMessageSize"/> bytes, may be empty.</param>
    /// <param name="reply">Receives the reply's bytes.</param>
    /// <param name="replyLength">The reply's length in bytes (also when it did not fit); 0 unless a reply came.</param>
    /// <param name="timeout">The longest wait for the whole exchange (room in the socket, then the reply): more than
    /// zero, at most 5 minutes.</param>
    /// <returns><see cref="Status.Success"/> with the reply in <paramref name="reply"/>; <see cref="Status.BufferTooSmall"/>
    /// when the reply is longer than <paramref name="reply"/> (its first bytes are there); the client's own error status
    /// when it replied with one; <see cref="Status.IoTimeout"/> when no reply came in time (a reply that comes later is
    /// dropped); <see cref="Status.Cancelled"/> when the connection ended while waiting;
    /// <see cref="Status.InsufficientResources"/> when <see cref="PortOptions.MaximumPendingReplyLimit"/> replies are
    /// already owed on the connection; <see cref="Status.NotSupported"/> when called from this connection's own callback
    /// (its reader thread could never read the reply); <see cref="Status.InvalidParameter"/> for a message too long or a
    /// timeout out of range; <see cref="Status.InvalidDeviceState"/> when the connection has ended.</returns>
    Status Send(ReadOnlySpan<byte> message, Span<byte> reply, out int replyLength, TimeSpan timeout);

    /// <summary>Ends the connection (<c>FltCloseClientPort</c>): the client's socket reads end of file, sends waiting for
    /// a reply return <see cref="Status.Cancelled"/>, and the disconnect callback is called.</summary>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidDeviceState"/> when it had already ended.</returns>
    Status Close();
}
