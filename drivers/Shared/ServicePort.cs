// A driver's user-mode service reached through the driver's communication port NAME ($PALISADE_HOME/ports/NAME,
// docs/ports.md): the antivirus's scanning service (scanService=NAME) and the firewall's prompt program (prompt=NAME).
// For each operation it holds, the driver sends the message "ID TEXT" (UTF-8, no reply wanted: the service takes its
// time and answers in any order) and keeps the held operation under ID; the service answers with its own message
// "ID WORD" (for the antivirus clean, infected or infected:NAME; for the firewall allow or block), which completes the
// held operation. One service at a time; its processes are kept out of the driver's file callbacks while it is
// connected (ExcludeClientsFromFileCallbacks), so a scanning service's reads of the files it scans are neither scanned
// nor held behind themselves.
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Palisade.Api;

namespace Palisade.Drivers;

internal sealed class ServicePort
{
    private readonly ConcurrentDictionary<long, object> _held = new();
    private readonly Action<object, string> _answered;
    private IPort? _port;

    /// <summary>A service whose answers go to <paramref name="answered"/> (with what <see cref="Ask"/> was given).</summary>
    public ServicePort(Action<object, string> answered) => _answered = answered;

    /// <summary>Creates the port NAME the service connects to: one client, root or the kernel's user, kept out of the
    /// driver's file callbacks.</summary>
    public Status Open(IPortManager ports, string name)
    {
        var options = new PortOptions { MaximumConnections = 1, ExcludeClientsFromFileCallbacks = true };
        return ports.CreatePort(name, options, new PortCallbacks { Message = Answer }, out _port);
    }

    /// <summary>
    /// Sends "ID TEXT" about <paramref name="held"/> to the service and keeps <paramref name="state"/> until its answer.
    /// Fails (and keeps nothing) when no service is connected or its socket is full: never waits for it.
    /// </summary>
    public Status Ask(IPendedOperation held, object state, string text)
    {
        IReadOnlyList<IPortConnection> services = _port?.Connections ?? [];
        if (services.Count == 0)
        {
            return Status.InvalidDeviceState;
        }

        _held[held.Id] = state;
        Status s = services[0].Send(Encoding.UTF8.GetBytes(held.Id.ToString(CultureInfo.InvariantCulture) + " " + text), TimeSpan.Zero);
        if (s.IsError)
        {
            _held.TryRemove(held.Id, out _);
        }

        return s;
    }

    /// <summary>Forgets an operation whose hold the kernel ended (no answer will complete it); returns its state.</summary>
    public object? Forget(IPendedOperation held) => _held.TryRemove(held.Id, out object? state) ? state : null;

    /// <summary>Closes the port (the driver unloads).</summary>
    public void Close() => _port?.Close();

    /// <summary>The service's message "ID WORD": the answer about the held operation ID (an answer counts once).</summary>
    private Status Answer(IPortConnection connection, ReadOnlySpan<byte> message, Span<byte> reply, out int replyLength)
    {
        replyLength = 0;
        string text = Encoding.UTF8.GetString(message);
        int space = text.IndexOf(' ', StringComparison.Ordinal);
        if (space <= 0 || !long.TryParse(text.AsSpan(0, space), NumberStyles.None, CultureInfo.InvariantCulture, out long id))
        {
            return Status.InvalidParameter;
        }

        if (!_held.TryRemove(id, out object? state))
        {
            return Status.NotFound;
        }

        _answered(state, text[(space + 1)..]);
        return Status.Success;
    }
}
