// The sample host firewall: a rules file (parameter "rules") turned, at load, into one sublayer of the network
// filter engine and its filters on the connect, bind, listen and accept layers, IPv4 and IPv6. The engine applies
// them to every guest socket operation; the driver has no code on that path. Its rules are first-match (see
// FirewallRules.cs); across products, the engine's arbitration applies (a block from another product's sublayer
// still wins over this firewall's allow).
using System.Globalization;
using Palisade.Api;

namespace Palisade.Drivers.Firewall;

/// <summary>The firewall driver's entry point (manifest entry type).</summary>
public sealed class FirewallDriver : IDriver
{
    internal const string RulesKey = "rules";
    internal const string SublayerName = "palisade-sample-firewall";
    internal const ushort SublayerWeight = 0x4000;
    internal const string ProductName = "Palisade Sample Firewall";

    private readonly List<CallbackCookie> _filters = [];
    private IDriverContext? _context;
    private CallbackCookie _sublayer;
    private CallbackCookie _product;

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

        foreach (NetworkFilter filter in policy.BuildFilters(_sublayer))
        {
            s = context.Network.AddFilter(filter, out CallbackCookie cookie);
            if (s.IsError)
            {
                context.ReportEvent("config-error", "the engine refused filter \"" + filter.Name + "\": " + s, 0, null);
                return s;
            }

            _filters.Add(cookie);
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

    /// <inheritdoc />
    public void Unload()
    {
        if (_context is null)
        {
            return;
        }

        _context.SecurityCenter.UnregisterProduct(_product);
        foreach (CallbackCookie f in _filters)
        {
            _context.Network.DeleteFilter(f);
        }

        _filters.Clear();
        _context.Network.DeleteSublayer(_sublayer);
    }
}
