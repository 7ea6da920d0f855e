using System.Net;
using System.Net.Sockets;
using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Events;

namespace Palisade.Kernel.Network;

/// <summary>A sublayer: a weighted group of filters that reaches one decision.</summary>
internal sealed class Sublayer(DriverObject? owner, string name, ushort weight) : Registration(owner, 0, null)
{
    public string Name { get; } = name;

    public ushort Weight { get; } = weight;

    public override Delegate? PrimaryCallback => null;

    public override string Describe() => "sublayer " + Name;
}

/// <summary>A callout: a classify function that callout filters call.</summary>
internal sealed class Callout(DriverObject? owner, string name, CalloutClassifyCallback classify) : Registration(owner, 0, null)
{
    public string Name { get; } = name;

    public CalloutClassifyCallback Classify { get; } = classify;

    public override Delegate? PrimaryCallback => Classify;

    /// <summary>A callout can hold the classification it is asked for.</summary>
    public override bool CanPend => true;

    public override string Describe() => "callout " + Name;
}

/// <summary>A filter as the engine keeps it: its definition with the address conditions pre-parsed.</summary>
internal sealed class FilterEntry(DriverObject? owner, NetworkFilter def, Sublayer sublayer, Callout? callout, long order) : Registration(owner, 0, null)
{
    public NetworkFilter Definition { get; } = def;

    public Sublayer Sublayer { get; } = sublayer;

    public Callout? Callout { get; } = callout;

    public long Order { get; } = order;

    public override Delegate? PrimaryCallback => Callout?.Classify;

    /// <summary>A filter's callback is its callout's, which is a registration of its own.</summary>
    public override bool HasCallbacks => false;

    public override string Describe() => "network filter " + Definition.Name;
}

/// <summary>The outcome of one classification.</summary>
internal readonly record struct Classification(bool Permitted, string? DecidingFilter, string? DecidingDriver, bool Vetoed);

/// <summary>
/// The network filter engine (the base filtering engine): sublayers, filters and callouts, and the arbitration
/// that turns them into one verdict per operation, as documented on <see cref="INetworkFilterEngine"/>.
/// </summary>
internal sealed class FilterEngine
{
    public const int SublayerLimit = 64, FilterLimit = 4096, CalloutLimit = 64, ConditionLimit = 16;
    private readonly CallbackMonitor _monitor;
    private readonly FaultPolicy _faults;
    private readonly HoldTable _holds;
    private long _order;

    /// <summary>What faults call a classification at each layer, by <see cref="NetworkLayer"/>.</summary>
    private static readonly string[] s_layerNames =
    [
        "classify connect", "classify connect", "classify bind", "classify bind",
        "classify listen", "classify listen", "classify accept", "classify accept",
    ];

    /// <summary>This thread's description of a classification that can be held (reused).</summary>
    [ThreadStatic]
    private static PendContext? t_pend;

    public FilterEngine(CallbackMonitor monitor, FaultPolicy faults, HoldTable holds)
    {
        _monitor = monitor;
        _faults = faults;
        _holds = holds;
    }

    public CallbackTable<Sublayer> Sublayers { get; } = new("sublayers", SublayerLimit, byAltitude: false);

    public CallbackTable<Callout> Callouts { get; } = new("callouts", CalloutLimit, byAltitude: false);

    public CallbackTable<FilterEntry> Filters { get; } = new("network filters", FilterLimit, byAltitude: false);

    /// <summary>The flow callbacks (<see cref="INetworkFilterEngine.RegisterFlowCallback"/>), in registration order.</summary>
    public CallbackTable<CallbackRegistration<NetworkFlowCallback>> FlowCallbacks { get; } = new("flow callbacks", FlowCallbackLimit, byAltitude: false);

    public const int FlowCallbackLimit = 64;

    /// <summary>The filters in classification order (sublayer weight, then filter weight, highest first), rebuilt on change.</summary>
    private FilterEntry[] _ordered = [];

    /// <summary>Per <see cref="NetworkLayer"/>, whether some filter there tests the image's digest (rebuilt with <see cref="_ordered"/>).</summary>
    private bool[] _hashLayers = new bool[8];

    private long _lastFlowId;

    /// <summary>True when some filter at <paramref name="layer"/> has an <see cref="ConditionField.ApplicationHash"/> condition:
    /// the host computes the image's digest only then.</summary>
    public bool TestsApplicationHash(NetworkLayer layer) => (uint)layer < 8 && Volatile.Read(ref _hashLayers)[(int)layer];

    /// <summary>True when some driver registered a flow callback.</summary>
    public bool HasFlowCallbacks => FlowCallbacks.Count > 0;

    /// <summary>A new flow id, unique for the kernel's life.</summary>
    public long NewFlowId() => Interlocked.Increment(ref _lastFlowId);

    public Status RegisterFlowCallback(DriverObject? owner, NetworkFlowCallback? callback, out CallbackCookie cookie)
    {
        cookie = default;
        if (callback is null)
        {
            return Status.InvalidParameter;
        }

        var registration = new CallbackRegistration<NetworkFlowCallback>(owner, callback);
        Status st = FlowCallbacks.Add(registration);
        if (st.IsSuccess)
        {
            cookie = registration.Cookie;
        }

        return st;
    }

    /// <summary>Tells every flow callback of <paramref name="flow"/>, containing each.</summary>
    public void NotifyFlow(in NetworkFlowInfo flow)
    {
        CallbackMonitor.Slot slot = _monitor.Current;
        string what = flow.Event == NetworkFlowEvent.Established ? "flow-established" : "flow-closed";
        foreach (CallbackRegistration<NetworkFlowCallback> r in FlowCallbacks.Snapshot)
        {
            if (r.Disabled)
            {
                continue;
            }

            var tag = new OperationTag(what, flow.Classify.ProcessId, flow.Classify.RemoteAddress, flow.Classify.RemotePort);
            if (slot.TryEnter(r, tag) is not { } frame)
            {
                continue; // Being unregistered: as if it were not registered.
            }

            bool threw = false;
            try
            {
                r.Callback(in flow);
            }
            catch (Exception ex)
            {
                threw = true;
                _faults.Threw(r, in tag, ex);
            }

            if (slot.Exit(frame) && !threw)
            {
                r.RecordSuccess();
            }
        }
    }

    public bool IsSubscribed(NetworkLayer layer)
    {
        foreach (FilterEntry f in Volatile.Read(ref _ordered))
        {
            if (f.Definition.Layer == layer)
            {
                return true;
            }
        }

        return false;
    }

    public bool AnyFilters => Volatile.Read(ref _ordered).Length > 0;

    public Status AddSublayer(DriverObject? owner, string? name, ushort weight, out CallbackCookie cookie)
    {
        cookie = default;
        if (string.IsNullOrEmpty(name) || name.Length > 128)
        {
            return Status.InvalidParameter;
        }

        foreach (Sublayer s in Sublayers.Snapshot)
        {
            if (s.Name == name)
            {
                return Status.ObjectNameCollision;
            }
        }

        var sub = new Sublayer(owner, name, weight);
        Status st = Sublayers.Add(sub);
        if (st.IsSuccess)
        {
            cookie = sub.Cookie;
        }

        return st;
    }

    public Status DeleteSublayer(DriverObject? owner, CallbackCookie cookie)
    {
        Sublayer? sub = Sublayers.Find(cookie, owner);
        if (sub is null)
        {
            return Status.InvalidHandle;
        }

        foreach (FilterEntry f in Filters.Snapshot)
        {
            if (ReferenceEquals(f.Sublayer, sub))
            {
                return Status.InvalidDeviceState;
            }
        }

        return Sublayers.Remove(cookie, owner);
    }

    public Status RegisterCallout(DriverObject? owner, string? name, CalloutClassifyCallback? classify, out CallbackCookie cookie)
    {
        cookie = default;
        if (string.IsNullOrEmpty(name) || name.Length > 128 || classify is null)
        {
            return Status.InvalidParameter;
        }

        foreach (Callout c in Callouts.Snapshot)
        {
            if (c.Name == name)
            {
                return Status.ObjectNameCollision;
            }
        }

        var callout = new Callout(owner, name, classify);
        Status st = Callouts.Add(callout);
        if (st.IsSuccess)
        {
            cookie = callout.Cookie;
        }

        return st;
    }

    public Status UnregisterCallout(DriverObject? owner, CallbackCookie cookie)
    {
        Callout? c = Callouts.Find(cookie, owner);
        if (c is null)
        {
            return Status.InvalidHandle;
        }

        foreach (FilterEntry f in Filters.Snapshot)
        {
            if (ReferenceEquals(f.Callout, c))
            {
                return Status.InvalidDeviceState;
            }
        }

        return Callouts.Remove(cookie, owner);
    }

    public Status AddFilter(DriverObject? owner, NetworkFilter? def, out CallbackCookie cookie)
    {
        cookie = default;
        if (def is null || string.IsNullOrEmpty(def.Name) || def.Name.Length > 128 || !Enum.IsDefined(def.Layer)
            || !Enum.IsDefined(def.Action) || def.Conditions is null || def.Conditions.Count > ConditionLimit)
        {
            return Status.InvalidParameter;
        }

        bool v6 = IsV6(def.Layer);
        foreach (NetworkCondition? c in def.Conditions)
        {
            if (c is null || !ValidCondition(c, v6))
            {
                return Status.InvalidParameter;
            }
        }

        Sublayer? sub = null;
        foreach (Sublayer s in Sublayers.Snapshot)
        {
            if (s.Cookie == def.Sublayer)
            {
                sub = s;
            }
        }

        if (sub is null)
        {
            return Status.InvalidHandle;
        }

        Callout? callout = null;
        if (def.Action == NetworkAction.Callout)
        {
            foreach (Callout c in Callouts.Snapshot)
            {
                if (c.Cookie == def.Callout)
                {
                    callout = c;
                }
            }

            if (callout is null)
            {
                return def.Callout == default ? Status.InvalidParameter : Status.InvalidHandle;
            }
        }
        else if (def.Callout != default)
        {
            return Status.InvalidParameter;
        }

        var entry = new FilterEntry(owner, def, sub, callout, Interlocked.Increment(ref _order));
        Status st = Filters.Add(entry);
        if (st.IsSuccess)
        {
            cookie = entry.Cookie;
            Reorder();
        }

        return st;
    }

    public Status DeleteFilter(DriverObject? owner, CallbackCookie cookie)
    {
        Status st = Filters.Remove(cookie, owner);
        if (st.IsSuccess)
        {
            Reorder();
        }

        return st;
    }

    /// <summary>Drops everything a driver added (filters first, then callouts and sublayers).</summary>
    public void RemoveOwnedBy(DriverObject owner)
    {
        Filters.RemoveOwnedBy(owner);
        Callouts.RemoveOwnedBy(owner);
        Sublayers.RemoveOwnedBy(owner);
        FlowCallbacks.RemoveOwnedBy(owner);
        Reorder();
    }

    private void Reorder()
    {
        FilterEntry[] all = Filters.Snapshot;
        var copy = (FilterEntry[])all.Clone();
        Array.Sort(copy, static (a, b) =>
        {
            int c = b.Sublayer.Weight.CompareTo(a.Sublayer.Weight);
            if (c != 0)
            {
                return c;
            }

            c = a.Sublayer.Cookie.Value.CompareTo(b.Sublayer.Cookie.Value);
            if (c != 0)
            {
                return c;
            }

            c = b.Definition.Weight.CompareTo(a.Definition.Weight);
            return c != 0 ? c : a.Order.CompareTo(b.Order);
        });
        var hashLayers = new bool[8];
        foreach (FilterEntry f in copy)
        {
            foreach (NetworkCondition c in f.Definition.Conditions)
            {
                hashLayers[(int)f.Definition.Layer] |= c.Field == ConditionField.ApplicationHash;
            }
        }

        Volatile.Write(ref _hashLayers, hashLayers);
        Volatile.Write(ref _ordered, copy);
    }

    private static bool IsV6(NetworkLayer l) => l is NetworkLayer.ConnectV6 or NetworkLayer.BindV6 or NetworkLayer.ListenV6 or NetworkLayer.AcceptV6;

    private static bool ValidCondition(NetworkCondition c, bool v6) => c.Field switch
    {
        ConditionField.RemoteAddress or ConditionField.LocalAddress =>
            c.Address is not null
            && (c.Address.AddressFamily == AddressFamily.InterNetworkV6) == v6
            && c.PrefixLength >= 0 && c.PrefixLength <= (v6 ? 128 : 32),
        ConditionField.RemotePort or ConditionField.LocalPort => c.LowPort is >= 0 and <= 65535 && c.HighPort >= c.LowPort && c.HighPort <= 65535,
        ConditionField.Protocol => Enum.IsDefined(c.MatchedProtocol),
        ConditionField.ApplicationPath or ConditionField.ApplicationFolder => c.Path is { Length: > 0 } && c.Path[0] == '/',
        ConditionField.ApplicationHash => c.Hash.Length == 32,
        ConditionField.UserId => c.MatchedUserId >= 0,
        _ => false,
    };

    /// <summary>
    /// Classifies one operation per the documented arbitration rules. An operation a guest thread
    /// (<paramref name="guestThread"/>, 0 for none) waits for can be held by a callout.
    /// </summary>
    public Classification Classify(in NetworkClassifyContext ctx, OperationRecord? record, int guestThread = 0)
    {
        FilterEntry[] filters = Volatile.Read(ref _ordered);
        CallbackMonitor.Slot slot = _monitor.Current;
        int verdict = 0; // 0 none, 1 permit, 2 block
        bool hard = false, vetoed = false;
        string? decidingFilter = null, decidingDriver = null;
        Sublayer? current = null;
        bool sublayerDecided = false;

        foreach (FilterEntry f in filters)
        {
            if (!ReferenceEquals(f.Sublayer, current))
            {
                current = f.Sublayer;
                sublayerDecided = false;
            }

            if (sublayerDecided || f.Disabled || f.Definition.Layer != ctx.Layer || !Matches(f.Definition, in ctx))
            {
                continue;
            }

            NetworkAction action = f.Definition.Action;
            if (action == NetworkAction.Callout)
            {
                Callout c = f.Callout!;
                if (c.Disabled)
                {
                    continue;
                }

                ClassifyResult r;
                Exception? thrown = null;
                long hold = guestThread == 0 || slot.Depth != 0 ? 0 : c.Policy.HoldMilliseconds;
                PendContext? pend = hold == 0 ? null : Pendable(in ctx, guestThread, hold);
                if (slot.TryEnter(c, Tag(in ctx), pend) is not { } frame)
                {
                    continue; // Being unregistered: the filter calls no callout, as if it had none.
                }

                try
                {
                    if (pend is null)
                    {
                        r = c.Classify(in ctx);
                    }
                    else
                    {
                        NetworkClassifyContext holdable = ctx with { HoldDeadline = pend.Deadline };
                        r = c.Classify(in holdable);
                    }
                }
                catch (Exception ex)
                {
                    r = ClassifyResult.Continue;
                    thrown = ex;
                }

                bool inTime = slot.Exit(frame);
                if (thrown is not null || !inTime || frame.Held is not null || (uint)r > (uint)ClassifyResult.Block)
                {
                    r = Resolve(c, in ctx, r, thrown, inTime, frame, record);
                }
                else
                {
                    c.RecordSuccess();
                }

                record?.Verdict(c.OwnerName, "callout " + r);
                if (r == ClassifyResult.Continue)
                {
                    continue;
                }

                action = r == ClassifyResult.Permit ? NetworkAction.Permit : NetworkAction.Block;
            }
            else
            {
                record?.Verdict(f.OwnerName, (action == NetworkAction.Permit ? "permit by " : "block by ") + f.Definition.Name);
            }

            sublayerDecided = true;
            if (action == NetworkAction.Permit)
            {
                if (verdict == 0)
                {
                    verdict = 1;
                    decidingFilter = f.Definition.Name;
                    decidingDriver = f.OwnerName;
                    hard = (f.Definition.Flags & NetworkFilterFlags.HardPermit) != 0;
                }
            }
            else if (verdict != 2)
            {
                if (verdict == 1 && hard)
                {
                    if ((f.Definition.Flags & NetworkFilterFlags.Veto) == 0)
                    {
                        continue;
                    }

                    vetoed = true;
                }

                verdict = 2;
                decidingFilter = f.Definition.Name;
                decidingDriver = f.OwnerName;
            }
        }

        return new Classification(verdict != 2, decidingFilter, decidingDriver, vetoed);
    }

    private static OperationTag Tag(in NetworkClassifyContext ctx) =>
        new(s_layerNames[(int)ctx.Layer], ctx.ProcessId, ctx.RemoteAddress ?? ctx.LocalAddress, ctx.RemoteAddress is null ? ctx.LocalPort : ctx.RemotePort);

    /// <summary>This thread's pend context for a classification a callout with <paramref name="hold"/> milliseconds may hold.</summary>
    private static PendContext Pendable(in NetworkClassifyContext ctx, int guestThread, long hold)
    {
        PendContext p = t_pend ??= new PendContext { Kind = PendedOperationKind.NetworkClassify };
        p.ProcessId = ctx.ProcessId;
        p.ThreadId = guestThread;
        p.Token = ctx.ApplicationPath;
        p.Deadline = Environment.TickCount64 + hold;
        return p;
    }

    /// <summary>The result of a callout that held the classification, faulted, or returned an undefined result.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private ClassifyResult Resolve(Callout c, in NetworkClassifyContext ctx, ClassifyResult r, Exception? thrown, bool inTime,
        CallbackMonitor.Frame frame, OperationRecord? record)
    {
        OperationTag tag = Tag(in ctx);
        HeldOperation? held = frame.Held;
        switch (_holds.End(c, frame, thrown, inTime, r == ClassifyResult.Pending, in tag, _faults, record))
        {
            case CallbackEnd.Faulted:
            case CallbackEnd.TimedOut:
                return TimeoutVerdict(c);
            case CallbackEnd.Completed:
                return held!.ClassifyVerdict;
            case CallbackEnd.Cancelled:
                return ClassifyResult.Block;
        }

        if ((uint)r > (uint)ClassifyResult.Block)
        {
            _faults.InvalidVerdict(c, in tag, r == ClassifyResult.Pending ? "returned Pending without a pend" : "returned an undefined result " + (int)r);
            return TimeoutVerdict(c);
        }

        c.RecordSuccess();
        return r;
    }

    private static ClassifyResult TimeoutVerdict(Callout c) => c.Policy.DenyOnTimeout ? ClassifyResult.Block : ClassifyResult.Continue;

    private static bool Matches(NetworkFilter f, in NetworkClassifyContext ctx)
    {
        foreach (NetworkCondition c in f.Conditions)
        {
            bool ok = c.Field switch
            {
                ConditionField.RemoteAddress => InPrefix(ctx.RemoteAddress, c.Address!, c.PrefixLength),
                ConditionField.LocalAddress => InPrefix(ctx.LocalAddress, c.Address!, c.PrefixLength),
                ConditionField.RemotePort => ctx.RemotePort >= c.LowPort && ctx.RemotePort <= c.HighPort,
                ConditionField.LocalPort => ctx.LocalPort >= c.LowPort && ctx.LocalPort <= c.HighPort,
                ConditionField.Protocol => ctx.Protocol == c.MatchedProtocol,
                ConditionField.ApplicationPath => string.Equals(ctx.ApplicationPath, c.Path, StringComparison.Ordinal),
                ConditionField.ApplicationFolder => InFolder(ctx.ApplicationPath, c.Path!),
                ConditionField.ApplicationHash => ctx.ApplicationHash.Length == 32 && ctx.ApplicationHash.Span.SequenceEqual(c.Hash.Span),
                ConditionField.UserId => ctx.UserId == c.MatchedUserId,
                _ => false,
            };
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True when <paramref name="path"/> lies in <paramref name="folder"/> or below it (a whole-name prefix).</summary>
    internal static bool InFolder(string? path, string folder)
    {
        if (path is null || !path.StartsWith(folder, StringComparison.Ordinal))
        {
            return false;
        }

        return folder == "/" || (path.Length > folder.Length && path[folder.Length] == '/');
    }

    private static bool InPrefix(IPAddress? address, IPAddress network, int prefix)
    {
        if (address is null || address.AddressFamily != network.AddressFamily)
        {
            return false;
        }

        Span<byte> a = stackalloc byte[16];
        Span<byte> n = stackalloc byte[16];
        address.TryWriteBytes(a, out int len);
        network.TryWriteBytes(n, out _);
        int full = prefix / 8;
        if (!a[..full].SequenceEqual(n[..full]))
        {
            return false;
        }

        int rest = prefix % 8;
        if (rest == 0 || full >= len)
        {
            return true;
        }

        int mask = 0xFF << (8 - rest) & 0xFF;
        return (a[full] & mask) == (n[full] & mask);
    }
}
