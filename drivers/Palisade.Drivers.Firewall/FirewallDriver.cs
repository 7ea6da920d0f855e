// The sample host firewall: a rules file (parameter "rules") turned, at load, into one sublayer of the network
// filter engine and its filters on the connect, bind, listen and accept layers, IPv4 and IPv6. The engine applies
// them to every guest socket operation; the driver has no code on that path. Its rules are first-match (see
// FirewallRules.cs); across products, the engine's arbitration applies (a block from another product's sublayer
// still wins over this firewall's allow).
//
// Interactive rules ("ask out ..."): a callout holds the connection (INetworkFilterEngine.PendClassify) and sends a
// question to the prompt program through the firewall's communication port (parameter "prompt" names it,
// Shared/ServicePort.cs, docs/ports.md); the program's answer message ("ID allow" or "ID block") completes the
// connection. Only the program that connects waits; no answer within promptTime gives the onTimeout verdict.
//
// Connection log (parameter "flowLog" = on): a flow callback reports each connection a guest establishes and its end as
// driver events ("flow-established", "flow-closed"), with the flow id, both ends, the program and the rule that allowed it.
using System.Globalization;
using Palisade.Api;

namespace Palisade.Drivers.Firewall;

/// <summary>The firewall driver's entry point (manifest entry type).</summary>
public sealed class FirewallDriver : IDriver
{
    internal const string RulesKey = "rules";
    internal const string PromptKey = "prompt";
    internal const string PromptTimeKey = "promptTime";
    internal const string OnTimeoutKey = "onTimeout";
    internal const string FlowLogKey = "flowLog";
    internal const string CalloutName = "palisade-sample-firewall-ask";
    internal const int DefaultPromptSeconds = 60;
    internal const string SublayerName = "palisade-sample-firewall";
    internal const ushort SublayerWeight = 0x4000;
    internal const string ProductName = "Palisade Sample Firewall";

    private readonly List<CallbackCookie> _filters = [];
    private IDriverContext? _context;
    private CallbackCookie _sublayer;
    private CallbackCookie _product;
    private CallbackCookie _callout;
    private CallbackCookie _flowLog;
    private ServicePort? _prompt;
    private ClassifyResult _noAnswer = ClassifyResult.Block;
    private PendedOperationCancelCallback? _onPromptEnded;

    /// <inheritdoc />
    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        FirewallPolicy policy = FirewallPolicy.AllowAll;
        if (context.Parameters.TryGetValue(RulesKey, out string? file))
        {
            if (!ConfigurationFile.TryRead(context.Files, file, out string? text, out string? why))
            {
                context.ReportEvent("config-error", RulesKey + ": " + why, 0, null);
                return Status.InvalidParameter;
            }

            if (!FirewallPolicy.TryParse(text, out FirewallPolicy? parsed, out string? error))
            {
                context.ReportEvent("config-error", RulesKey + " \"" + file + "\" " + error, 0, null);
                return Status.InvalidParameter;
            }

            policy = parsed;
        }

        Status s = context.Network.AddSublayer(SublayerName, SublayerWeight, out _sublayer);
        if (s.IsError)
        {
            return s;
        }

        if (policy.HasAsk)
        {
            s = StartPrompt(context);
            if (s.IsError)
            {
                return s;
            }
        }

        foreach (NetworkFilter filter in policy.BuildFilters(_sublayer, _callout))
        {
            s = context.Network.AddFilter(filter, out CallbackCookie cookie);
            if (s.IsError)
            {
                context.ReportEvent("config-error", "the engine refused filter \"" + filter.Name + "\": " + s, 0, null);
                return s;
            }

            _filters.Add(cookie);
        }

        if (context.Parameters.TryGetValue(FlowLogKey, out string? log))
        {
            if (log is not ("on" or "off"))
            {
                context.ReportEvent("config-error", FlowLogKey + " is \"" + log + "\"; expected on or off", 0, null);
                return Status.InvalidParameter;
            }

            s = log == "on" ? context.Network.RegisterFlowCallback(LogFlow, out _flowLog) : Status.Success;
            if (s.IsError)
            {
                return s;
            }
        }

        s = context.SecurityCenter.RegisterProduct(SecurityProductKind.Firewall, ProductName, out _product);
        if (s.IsError)
        {
            return s;
        }

        context.ReportEvent("started", string.Format(CultureInfo.InvariantCulture, "{0} rules, {1} filters; default in {2}, default out {3}",
            policy.Rules.Count, _filters.Count, policy.DefaultInAllow ? "allow" : "block", policy.DefaultOutAllow ? "allow" : "block"), 0, null);
        return Status.Success;
    }

    /// <summary>
    /// Sets up the "ask" lines: the callout that holds a connection and asks, its hold time and verdict without an answer,
    /// and the communication port the prompt program connects to, whose answers complete the held connections.
    /// </summary>
    private Status StartPrompt(IDriverContext context)
    {
        IReadOnlyDictionary<string, string> p = context.Parameters;
        if (!p.TryGetValue(PromptKey, out string? port) || port.Length == 0)
        {
            context.ReportEvent("config-error", "the rules ask, so " + PromptKey + " must name the prompt program's communication port", 0, null);
            return Status.InvalidParameter;
        }

        int seconds = DefaultPromptSeconds;
        if (p.TryGetValue(PromptTimeKey, out string? time) && (!int.TryParse(time, NumberStyles.None, CultureInfo.InvariantCulture, out seconds) || seconds is < 1 or > 600))
        {
            context.ReportEvent("config-error", PromptTimeKey + " is \"" + time + "\"; expected a number of seconds from 1 to 600", 0, null);
            return Status.InvalidParameter;
        }

        if (p.TryGetValue(OnTimeoutKey, out string? verdict))
        {
            if (verdict is not ("block" or "continue"))
            {
                context.ReportEvent("config-error", OnTimeoutKey + " is \"" + verdict + "\"; expected block or continue", 0, null);
                return Status.InvalidParameter;
            }

            _noAnswer = verdict == "block" ? ClassifyResult.Block : ClassifyResult.Continue;
        }

        _prompt = new ServicePort((state, word) => Answered((IPendedOperation)state, word));
        _onPromptEnded = OnPromptEnded;
        Status s = _prompt.Open(context.Ports, port);
        if (s.IsError)
        {
            context.ReportEvent("config-error", PromptKey + ": the port \"" + port + "\" cannot be created (" + s.Name + ")", 0, null);
            return s;
        }

        s = context.Network.RegisterCallout(CalloutName, Ask, out _callout);
        return s.IsError ? s : context.SetCallbackOptions(_callout, new CallbackOptions
        {
            MaximumHoldTime = TimeSpan.FromSeconds(seconds),
            TimeoutVerdict = _noAnswer == ClassifyResult.Block ? TimeoutVerdict.Deny : TimeoutVerdict.Allow,
        });
    }

    /// <summary>The callout of the "ask" lines: holds the connection and asks the prompt program.</summary>
    private ClassifyResult Ask(in NetworkClassifyContext context)
    {
        Status s = _context!.Network.PendClassify(in context, _onPromptEnded, out IPendedOperation? held);
        if (s.IsError)
        {
            return _noAnswer;
        }

        string question = string.Format(CultureInfo.InvariantCulture, "connect {0} {1} {2} {3} user {4}",
            context.ApplicationPath, context.Protocol.ToString().ToLowerInvariant(), context.RemoteAddress, context.RemotePort, context.UserId);
        if (_prompt!.Ask(held!, held!, question).IsError)
        {
            // No prompt program is connected (or its socket is full): the verdict there would be after the prompt time
            // anyway. Returning a verdict instead of Pending withdraws the hold.
            return _noAnswer;
        }

        _context.ReportEvent("prompt", "connection " + held!.Id.ToString(CultureInfo.InvariantCulture) + " held: " + question, context.ProcessId, null);
        return ClassifyResult.Pending;
    }

    /// <summary>The connection log: one event per flow established and per flow closed.</summary>
    private void LogFlow(in NetworkFlowInfo flow)
    {
        NetworkClassifyContext c = flow.Classify;
        string line = string.Format(CultureInfo.InvariantCulture, "flow {0} {1} {2} {3}:{4} {5} {6}:{7} app {8} by {9}",
            flow.FlowId, c.Protocol.ToString().ToLowerInvariant(), c.Layer is NetworkLayer.AcceptV4 or NetworkLayer.AcceptV6 ? "in" : "out",
            c.LocalAddress, c.LocalPort, c.Layer is NetworkLayer.AcceptV4 or NetworkLayer.AcceptV6 ? "<-" : "->", c.RemoteAddress, c.RemotePort,
            c.ApplicationPath, flow.DecidingFilter ?? "no rule");
        _context!.ReportEvent(flow.Event == NetworkFlowEvent.Established ? "flow-established" : "flow-closed", line, c.ProcessId, c.ApplicationPath);
    }

    /// <summary>The prompt program's answer message about a held connection completes it.</summary>
    private void Answered(IPendedOperation held, string word)
    {
        ClassifyResult answer = word switch
        {
            "allow" => ClassifyResult.Permit,
            "block" => ClassifyResult.Block,
            _ => _noAnswer,
        };
        Status s = _context!.Network.CompletePendedClassify(held, answer);
        _context.ReportEvent("prompt-answered", "connection " + held.Id.ToString(CultureInfo.InvariantCulture) + ": " + word + " (" + s.Name + ")", held.RequesterProcessId, null);
    }

    /// <summary>The kernel ended a held connection without an answer: it timed out, or the program went away.</summary>
    private void OnPromptEnded(IPendedOperation held)
    {
        _prompt?.Forget(held);
        _context!.ReportEvent("prompt-ended", "connection " + held.Id.ToString(CultureInfo.InvariantCulture) + ": "
            + (held.State == PendedOperationState.TimedOut ? "no answer in time" : "cancelled"), held.RequesterProcessId, null);
    }

    /// <inheritdoc />
    public void Unload()
    {
        if (_context is null)
        {
            return;
        }

        _context.SecurityCenter.UnregisterProduct(_product);
        if (_flowLog != default)
        {
            _context.Network.UnregisterFlowCallback(_flowLog);
        }

        foreach (CallbackCookie f in _filters)
        {
            _context.Network.DeleteFilter(f);
        }

        _filters.Clear();
        _context.Network.DeleteSublayer(_sublayer);
        if (_prompt is not null)
        {
            _context.Network.UnregisterCallout(_callout);
            _prompt.Close();
        }
    }
}
