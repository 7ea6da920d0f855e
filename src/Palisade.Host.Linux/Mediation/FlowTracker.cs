using Palisade.Api;
using Palisade.Interop;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// The flows a run established (<see cref="KernelHost.FlowEstablished"/>) until their socket loses its last descriptor:
/// every <see cref="INetworkFilterEngine.FlowSweepMilliseconds"/>, while some flow is open, a sweep lists the host's open
/// internet sockets (<see cref="SockDiag"/>) and reports each flow whose socket is no longer among them as closed. The
/// guest's close is not a notification the supervisor receives (close runs natively unless a file driver asks for it,
/// and a descriptor may be duplicated, inherited or passed on), so the socket itself is asked: the report is at most one
/// sweep late, and exact about which close was the last.
/// </summary>
internal sealed class FlowTracker : IDisposable
{
    private readonly KernelHost _host;
    private readonly object _gate = new();
    private readonly Dictionary<ulong, Tracked> _flows = [];
    private readonly HashSet<ulong> _open = [];
    private readonly List<Tracked> _closed = [];
    private readonly Timer _timer;
    private bool _running;
    private bool _disposed;

    public FlowTracker(KernelHost host)
    {
        _host = host;
        _timer = new Timer(_ => Sweep(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>Flows established and not yet reported closed.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _flows.Count;
            }
        }
    }

    /// <summary>Follows the flow of socket <paramref name="cookie"/> (<see cref="SockDiag.CookieOf"/>) until it closes.</summary>
    public void Track(ulong cookie, int family, int protocol, in NetworkFlowInfo flow)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _flows[cookie] = new Tracked(family, protocol, flow);
            if (!_running)
            {
                _running = true;
                _timer.Change(INetworkFilterEngine.FlowSweepMilliseconds, INetworkFilterEngine.FlowSweepMilliseconds);
            }
        }
    }

    /// <summary>
    /// Looks once at every flow's socket and reports those closed. Called by the timer, and at the end of a run (so that
    /// a flow whose process has just ended is reported before the kernel stops).
    /// </summary>
    public void Sweep()
    {
        lock (_gate)
        {
            _open.Clear();
            _closed.Clear();
            bool v4Tcp = false, v6Tcp = false, v4Udp = false, v6Udp = false;
            foreach (Tracked t in _flows.Values)
            {
                bool tcp = t.Protocol == Libc.IPPROTO_TCP, v6 = t.Family == Libc.AF_INET6;
                v4Tcp |= tcp && !v6;
                v6Tcp |= tcp && v6;
                v4Udp |= !tcp && !v6;
                v6Udp |= !tcp && v6;
            }

            // A protocol Linux cannot list leaves its flows open rather than reporting them closed wrongly.
            bool tcpKnown = (!v4Tcp || SockDiag.AddOpenSockets(Libc.AF_INET, Libc.IPPROTO_TCP, _open) == 0)
                & (!v6Tcp || SockDiag.AddOpenSockets(Libc.AF_INET6, Libc.IPPROTO_TCP, _open) == 0);
            bool udpKnown = (!v4Udp || SockDiag.AddOpenSockets(Libc.AF_INET, Libc.IPPROTO_UDP, _open) == 0)
                & (!v6Udp || SockDiag.AddOpenSockets(Libc.AF_INET6, Libc.IPPROTO_UDP, _open) == 0);
            foreach ((ulong cookie, Tracked t) in _flows)
            {
                bool known = t.Protocol == Libc.IPPROTO_TCP ? tcpKnown : udpKnown;
                if (known && !_open.Contains(cookie))
                {
                    _closed.Add(t);
                    _flows.Remove(cookie);
                }
            }

            if (_flows.Count == 0 && _running)
            {
                _running = false;
                _timer.Change(Timeout.Infinite, Timeout.Infinite);
            }

            // Reported under the lock, so that two sweeps (the timer's, the end of a run) never report a flow twice
            // or out of order; a flow callback that takes long delays only the next sweep.
            foreach (Tracked t in _closed)
            {
                NetworkFlowInfo flow = t.Flow;
                _host.FlowClosed(in flow);
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _timer.Dispose();
        }
    }

    private readonly record struct Tracked(int Family, int Protocol, NetworkFlowInfo Flow);
}
