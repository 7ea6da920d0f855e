using System.Globalization;
using Palisade.Api;

namespace Palisade.TestDrivers.NetworkRegistry;

/// <summary>
/// Decides with a callout and a registry callback, as the parameters say:
/// <list type="bullet">
/// <item><c>port</c>: a callout on every IPv4 connect blocks the connects to that remote port (the callout sees the
/// context and its result decides; every other connect gets Continue).</item>
/// <item><c>flowThrows</c> = <c>on</c>: a flow callback that throws on every flow (a fault the kernel contains).</item>
/// <item><c>key</c>: a registry callback blocks creating that key and setting values in it (AccessDenied), and answers a
/// query of its value <c>virtual</c> itself (a bypass: DWord 4242).</item>
/// </list>
/// Each decision is reported as an event.
/// </summary>
public sealed class NetworkRegistryDriver : IDriver
{
    private IDriverContext? _context;
    private int _port = -1;
    private string? _key;

    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        IReadOnlyDictionary<string, string> p = context.Parameters;
        if (p.TryGetValue("port", out string? port))
        {
            _port = int.Parse(port, CultureInfo.InvariantCulture);
            Status s = context.Network.AddSublayer("netreg", 0x5000, out CallbackCookie sublayer);
            if (s.IsSuccess)
            {
                s = context.Network.RegisterCallout("netreg-port", Classify, out CallbackCookie callout);
                if (s.IsSuccess)
                {
                    s = context.Network.AddFilter(new NetworkFilter
                    {
                        Name = "netreg callout",
                        Layer = NetworkLayer.ConnectV4,
                        Sublayer = sublayer,
                        Action = NetworkAction.Callout,
                        Callout = callout,
                        Conditions = [NetworkCondition.Protocol(NetworkProtocol.Tcp)],
                    }, out _);
                }
            }

            if (s.IsError)
            {
                return s;
            }
        }

        if (p.TryGetValue("flowThrows", out string? throws) && throws == "on")
        {
            Status s = context.Network.RegisterFlowCallback(Throw, out _);
            if (s.IsError)
            {
                return s;
            }
        }

        if (p.TryGetValue("key", out _key))
        {
            Status s = context.Registry.Register(OnRegistry, "321000", out _);
            if (s.IsError)
            {
                return s;
            }
        }

        return Status.Success;
    }

    /// <summary>Nothing to do: the kernel removes a driver's registrations at its unload.</summary>
    public void Unload()
    {
    }

    private ClassifyResult Classify(in NetworkClassifyContext context)
    {
        if (context.RemotePort != _port)
        {
            return ClassifyResult.Continue;
        }

        _context!.ReportEvent("classify", FormattableString.Invariant($"blocked {context.Layer} {context.RemoteAddress}:{context.RemotePort} app {context.ApplicationPath}"), context.ProcessId, null);
        return ClassifyResult.Block;
    }

    private static void Throw(in NetworkFlowInfo flow) =>
        throw new InvalidOperationException(FormattableString.Invariant($"the test's flow callback refuses flow {flow.FlowId}"));

    private Status OnRegistry(ref RegistryNotification n)
    {
        if (!string.Equals(n.KeyPath, _key, StringComparison.OrdinalIgnoreCase))
        {
            return Status.Success;
        }

        switch (n.NotifyClass)
        {
            case RegistryNotifyClass.PreCreateKey or RegistryNotifyClass.PreSetValue:
                _context!.ReportEvent("registry", "blocked " + n.NotifyClass + " of " + n.KeyPath, n.ProcessId, null);
                return Status.AccessDenied;
            case RegistryNotifyClass.PreQueryValue when n.ValueName == "virtual":
                n.BypassType = RegistryValueType.DWord;
                n.BypassData = BitConverter.GetBytes(4242);
                return Status.CallbackBypass;
            default:
                return Status.Success;
        }
    }
}
