// A driver with one communication port (parameter port, default "e2e") and one minifilter:
//   - a create of a path ending in ".ask" is sent to the port's first client (the path, UTF-8), and its reply decides:
//     "deny" fails the open with AccessDenied, anything else lets it go on; no client, or no reply in 3 s, denies;
//   - a create of a path ending in ".seen" is reported as a "saw" event naming the path and the requester's pid.
// A client's own message is answered with "pong:" and the message. Connects and disconnects are reported as events.
// Parameters: allowUid=N admits only that user; exclude=true keeps clients out of the filter (ExcludeClientsFromFileCallbacks).
using System.Globalization;
using System.Text;
using Palisade.Api;

namespace Palisade.TestDrivers.Ports;

/// <summary>The ports test driver's entry point.</summary>
public sealed class PortsDriver : IDriver
{
    private IDriverContext? _context;
    private IPort? _port;

    /// <inheritdoc />
    public Status Load(IDriverContext context)
    {
        _context = context;
        IReadOnlyDictionary<string, string> p = context.Parameters;
        var options = new PortOptions
        {
            MaximumConnections = 4,
            AllowedUserIds = p.TryGetValue("allowUid", out string? uid) ? [uint.Parse(uid, CultureInfo.InvariantCulture)] : null,
            ExcludeClientsFromFileCallbacks = p.TryGetValue("exclude", out string? exclude) && exclude == "true",
        };
        var callbacks = new PortCallbacks { Connect = Connected, Disconnect = Disconnected, Message = Answer };
        Status s = context.Ports.CreatePort(p.TryGetValue("port", out string? name) ? name : "e2e", options, callbacks, out _port);
        if (s.IsError)
        {
            return s;
        }

        var filter = new FilterRegistration
        {
            Name = "ports-e2e",
            Altitude = "320300",
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = PreCreate }],
        };
        return context.Files.RegisterFilter(filter, out _);
    }

    /// <inheritdoc />
    public void Unload()
    {
    }

    private Status Connected(IPortConnection c, ReadOnlySpan<byte> context)
    {
        _context!.ReportEvent("connected", string.Create(CultureInfo.InvariantCulture, $"pid={c.ProcessId} uid={c.UserId} gid={c.GroupId} context={Encoding.UTF8.GetString(context)}"), c.ProcessId, null);
        return Status.Success;
    }

    private void Disconnected(IPortConnection c) =>
        _context!.ReportEvent("disconnected", string.Create(CultureInfo.InvariantCulture, $"pid={c.ProcessId}"), c.ProcessId, null);

    private static Status Answer(IPortConnection c, ReadOnlySpan<byte> message, Span<byte> reply, out int replyLength)
    {
        byte[] answer = [.. Encoding.ASCII.GetBytes("pong:"), .. message];
        replyLength = Math.Min(answer.Length, reply.Length);
        answer.AsSpan(0, replyLength).CopyTo(reply);
        return Status.Success;
    }

    private PreOperationStatus PreCreate(ref FileOperation op)
    {
        if (op.Path.EndsWith(".seen", StringComparison.Ordinal))
        {
            _context!.ReportEvent("saw", op.Path, op.RequesterProcessId, op.Path);
            return PreOperationStatus.SuccessNoCallback;
        }

        if (!op.Path.EndsWith(".ask", StringComparison.Ordinal))
        {
            return PreOperationStatus.SuccessNoCallback;
        }

        IReadOnlyList<IPortConnection> clients = _port!.Connections;
        byte[] reply = new byte[16];
        int length = 0;
        Status s = clients.Count == 0 ? Status.NotFound
            : clients[0].Send(Encoding.UTF8.GetBytes(op.Path), reply, out length, TimeSpan.FromSeconds(3));
        string answer = Encoding.UTF8.GetString(reply, 0, Math.Min(length, reply.Length));
        bool deny = s.IsError || answer == "deny";
        _context!.ReportEvent("asked", op.Path + " -> " + (s.IsError ? s.Name : answer), op.RequesterProcessId, op.Path);
        if (!deny)
        {
            return PreOperationStatus.SuccessNoCallback;
        }

        op.Status = Status.AccessDenied;
        return PreOperationStatus.Complete;
    }
}
