// The firewall's rules file: its grammar (documented in README.md), its parser and its translation into filters of
// the network filter engine. Rules are first-match: the first line that matches an operation decides it, and the
// default policy decides what no line matches. The translation keeps that meaning by giving earlier lines higher
// weights within the firewall's one sublayer, and the default policy weight 0. An "ask" line becomes a callout filter: the
// firewall holds the connection until its prompt program answers (FirewallDriver.cs).
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Palisade.Api;

namespace Palisade.Drivers.Firewall;

/// <summary>Which way a rule applies: out is a connect; in is a bind, a listen or an accepted connection.</summary>
internal enum Direction
{
    Out,
    In,
}

/// <summary>One rule line.</summary>
internal sealed class FirewallRule
{
    public int Line { get; init; }

    public bool Allow { get; init; }

    /// <summary>An "ask" line: the prompt program decides each connection it matches.</summary>
    public bool Ask { get; init; }

    public Direction Direction { get; init; }

    /// <summary>The protocol, or null for any.</summary>
    public NetworkProtocol? Protocol { get; init; }

    /// <summary>The remote network, or null for any (then the rule applies to IPv4 and IPv6).</summary>
    public IPAddress? Address { get; init; }

    public int PrefixLength { get; init; }

    /// <summary>The port range (remote for out, local for in), or -1 for any.</summary>
    public int PortLow { get; init; } = -1;

    public int PortHigh { get; init; } = -1;

    /// <summary>The program's absolute path, or null for any; a path ending in "/" names a folder (the programs in it and below).</summary>
    public string? Application { get; init; }

    /// <summary>The SHA-256 of the program's image, or null for any.</summary>
    public byte[]? ApplicationHash { get; init; }

    /// <summary>The user id, or null for any.</summary>
    public int? UserId { get; init; }
}

/// <summary>A parsed rules file.</summary>
internal sealed class FirewallPolicy
{
    /// <summary>The network filter engine's limit on filters; a policy needing more is refused at parse time.</summary>
    public const int MaxFilters = 4096;

    private static readonly NetworkLayer[] s_outV4 = [NetworkLayer.ConnectV4];
    private static readonly NetworkLayer[] s_outV6 = [NetworkLayer.ConnectV6];
    private static readonly NetworkLayer[] s_inV4 = [NetworkLayer.BindV4, NetworkLayer.ListenV4, NetworkLayer.AcceptV4];
    private static readonly NetworkLayer[] s_inV6 = [NetworkLayer.BindV6, NetworkLayer.ListenV6, NetworkLayer.AcceptV6];

    private FirewallPolicy(List<FirewallRule> rules, bool defaultInAllow, bool defaultOutAllow)
    {
        Rules = rules;
        DefaultInAllow = defaultInAllow;
        DefaultOutAllow = defaultOutAllow;
    }

    public IReadOnlyList<FirewallRule> Rules { get; }

    public bool DefaultInAllow { get; }

    public bool DefaultOutAllow { get; }

    /// <summary>No rules; everything allowed.</summary>
    public static FirewallPolicy AllowAll { get; } = new([], true, true);

    /// <summary>True when some line asks the prompt program.</summary>
    public bool HasAsk => Rules.Any(r => r.Ask);

    /// <summary>Parses a rules file.</summary>
    /// <param name="text">The file's content.</param>
    /// <param name="policy">The policy.</param>
    /// <param name="error">For a bad file: <c>line N: what is wrong</c>.</param>
    public static bool TryParse(string text, [NotNullWhen(true)] out FirewallPolicy? policy, [NotNullWhen(false)] out string? error)
    {
        policy = null;
        var rules = new List<FirewallRule>();
        bool defaultIn = true, defaultOut = true;
        int lineNumber = 0;
        foreach (string raw in text.Split('\n'))
        {
            lineNumber++;
            int hash = raw.IndexOf('#', StringComparison.Ordinal);
            string line = (hash >= 0 ? raw[..hash] : raw).Trim();
            if (line.Length == 0)
            {
                continue;
            }

            string[] words = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (words[0] == "default")
            {
                if (words.Length != 3 || words[1] is not ("in" or "out") || words[2] is not ("allow" or "block"))
                {
                    error = At(lineNumber, "expected 'default in|out allow|block'");
                    return false;
                }

                if (words[1] == "in")
                {
                    defaultIn = words[2] == "allow";
                }
                else
                {
                    defaultOut = words[2] == "allow";
                }

                continue;
            }

            if (!TryParseRule(words, lineNumber, out FirewallRule? rule, out error))
            {
                return false;
            }

            rules.Add(rule);
        }

        policy = new FirewallPolicy(rules, defaultIn, defaultOut);
        int filters = policy.BuildFilters(default).Count;
        if (filters > MaxFilters)
        {
            policy = null;
            error = FormattableString.Invariant($"the rules need {filters} filters; the network filter engine holds at most {MaxFilters}");
            return false;
        }

        error = null;
        return true;
    }

    private static bool TryParseRule(string[] words, int line, [NotNullWhen(true)] out FirewallRule? rule, [NotNullWhen(false)] out string? error)
    {
        rule = null;
        if (words[0] is not ("allow" or "block" or "ask"))
        {
            error = At(line, "unknown action \"" + words[0] + "\" (expected allow, block, ask or default)");
            return false;
        }

        if (words.Length < 2 || words[1] is not ("in" or "out"))
        {
            error = At(line, "expected a direction, in or out, after \"" + words[0] + "\"");
            return false;
        }

        if (words[0] == "ask" && words[1] != "out")
        {
            error = At(line, "\"ask\" applies to outbound connections only (ask out ...)");
            return false;
        }

        NetworkProtocol? protocol = null;
        IPAddress? address = null;
        int prefix = 0, low = -1, high = -1;
        string? app = null;
        byte[]? hash = null;
        int? user = null;
        for (int i = 2; i < words.Length; i++)
        {
            string w = words[i];
            switch (w)
            {
                case "tcp":
                    protocol = NetworkProtocol.Tcp;
                    break;
                case "udp":
                    protocol = NetworkProtocol.Udp;
                    break;
                case "any":
                    break;
                case "port":
                    if (++i >= words.Length || !TryParsePorts(words[i], out low, out high))
                    {
                        error = At(line, "\"port\" needs a port or a range such as 443 or 8000-8080 (0 to 65535)");
                        return false;
                    }

                    break;
                case "app":
                    if (++i >= words.Length || !words[i].StartsWith('/'))
                    {
                        error = At(line, "\"app\" needs the absolute path of a program");
                        return false;
                    }

                    app = words[i];
                    break;
                case "sha256":
                    if (++i >= words.Length || words[i].Length != 64 || !IsHex(words[i]))
                    {
                        error = At(line, "\"sha256\" needs the SHA-256 of a program, 64 hexadecimal digits");
                        return false;
                    }

                    hash = Convert.FromHexString(words[i]);
                    break;
                case "user":
                    if (++i >= words.Length || !int.TryParse(words[i], NumberStyles.None, CultureInfo.InvariantCulture, out int uid))
                    {
                        error = At(line, "\"user\" needs a numeric user id");
                        return false;
                    }

                    user = uid;
                    break;
                default:
                    if (address is not null || !TryParseNetwork(w, out address, out prefix))
                    {
                        error = At(line, "\"" + w + "\" is not a protocol (tcp, udp, any), an address such as 10.0.0.0/8 or 2001:db8::/32, or one of port, app, sha256, user"
                            + (address is not null ? " (a rule has at most one address)" : ""));
                        return false;
                    }

                    break;
            }
        }

        rule = new FirewallRule
        {
            Line = line, Allow = words[0] == "allow", Ask = words[0] == "ask", Direction = words[1] == "in" ? Direction.In : Direction.Out, Protocol = protocol,
            Address = address, PrefixLength = prefix, PortLow = low, PortHigh = high, Application = app, ApplicationHash = hash, UserId = user,
        };
        error = null;
        return true;
    }

    private static bool IsHex(string text) => text.All(char.IsAsciiHexDigit);

    private static bool TryParsePorts(string text, out int low, out int high)
    {
        int dash = text.IndexOf('-', StringComparison.Ordinal);
        string first = dash < 0 ? text : text[..dash];
        string second = dash < 0 ? text : text[(dash + 1)..];
        high = -1;
        return int.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out low)
            && int.TryParse(second, NumberStyles.None, CultureInfo.InvariantCulture, out high)
            && low <= high && high <= 65535;
    }

    private static bool TryParseNetwork(string text, [NotNullWhen(true)] out IPAddress? address, out int prefix)
    {
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        prefix = 0;
        if (!IPAddress.TryParse(slash < 0 ? text : text[..slash], out address))
        {
            return false;
        }

        int max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (slash < 0)
        {
            prefix = max;
            return true;
        }

        if (!int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > max)
        {
            address = null;
            return false;
        }

        return true;
    }

    private static string At(int line, string message) => "line " + line.ToString(CultureInfo.InvariantCulture) + ": " + message;

    /// <summary>
    /// The filters that implement the policy in one sublayer. Line k of n rules gets weight n - k, so the first
    /// matching line wins; the default policy is a filter without conditions at weight 0 on every layer. An "ask" line
    /// calls <paramref name="ask"/>, the firewall's callout.
    /// </summary>
    public List<NetworkFilter> BuildFilters(CallbackCookie sublayer, CallbackCookie ask = default)
    {
        var filters = new List<NetworkFilter>();
        for (int k = 0; k < Rules.Count; k++)
        {
            FirewallRule r = Rules[k];
            ulong weight = (ulong)(Rules.Count - k);
            bool v4 = r.Address is null || r.Address.AddressFamily == AddressFamily.InterNetwork;
            bool v6 = r.Address is null || r.Address.AddressFamily == AddressFamily.InterNetworkV6;
            if (v4)
            {
                AddRule(filters, r, r.Direction == Direction.Out ? s_outV4 : s_inV4, sublayer, weight, ask);
            }

            if (v6)
            {
                AddRule(filters, r, r.Direction == Direction.Out ? s_outV6 : s_inV6, sublayer, weight, ask);
            }
        }

        AddDefault(filters, s_outV4, DefaultOutAllow, sublayer);
        AddDefault(filters, s_outV6, DefaultOutAllow, sublayer);
        AddDefault(filters, s_inV4, DefaultInAllow, sublayer);
        AddDefault(filters, s_inV6, DefaultInAllow, sublayer);
        return filters;
    }

    private static void AddRule(List<NetworkFilter> filters, FirewallRule r, NetworkLayer[] layers, CallbackCookie sublayer, ulong weight, CallbackCookie ask)
    {
        foreach (NetworkLayer layer in layers)
        {
            bool accept = layer is NetworkLayer.AcceptV4 or NetworkLayer.AcceptV6;
            bool remoteKnown = r.Direction == Direction.Out || accept;
            if (r.Address is not null && !remoteKnown && !r.Allow)
            {
                // A bind or a listen has no peer yet: a block of some peers is enforced when their connection is
                // accepted, and must not stop the program from listening for the others.
                continue;
            }

            var conditions = new List<NetworkCondition>();
            if (r.Protocol is NetworkProtocol p)
            {
                conditions.Add(NetworkCondition.Protocol(p));
            }

            if (r.Address is not null && remoteKnown)
            {
                conditions.Add(NetworkCondition.RemoteAddress(r.Address, r.PrefixLength));
            }

            if (r.PortLow >= 0)
            {
                conditions.Add(r.Direction == Direction.Out ? NetworkCondition.RemotePort(r.PortLow, r.PortHigh) : NetworkCondition.LocalPort(r.PortLow, r.PortHigh));
            }

            if (r.Application is not null)
            {
                conditions.Add(r.Application.EndsWith('/') ? NetworkCondition.ApplicationFolder(r.Application) : NetworkCondition.ApplicationPath(r.Application));
            }

            if (r.ApplicationHash is not null)
            {
                conditions.Add(NetworkCondition.ApplicationHash(r.ApplicationHash));
            }

            if (r.UserId is int uid)
            {
                conditions.Add(NetworkCondition.UserId(uid));
            }

            filters.Add(new NetworkFilter
            {
                Name = "line " + r.Line.ToString(CultureInfo.InvariantCulture) + " " + (r.Ask ? "ask" : r.Allow ? "allow" : "block") + " " + layer,
                Layer = layer,
                Sublayer = sublayer,
                Weight = weight,
                Conditions = conditions,
                Action = r.Ask ? NetworkAction.Callout : r.Allow ? NetworkAction.Permit : NetworkAction.Block,
                Callout = r.Ask ? ask : default,
            });
        }
    }

    private static void AddDefault(List<NetworkFilter> filters, NetworkLayer[] layers, bool allow, CallbackCookie sublayer)
    {
        foreach (NetworkLayer layer in layers)
        {
            filters.Add(new NetworkFilter
            {
                Name = "default " + (allow ? "allow " : "block ") + layer,
                Layer = layer,
                Sublayer = sublayer,
                Weight = 0,
                Action = allow ? NetworkAction.Permit : NetworkAction.Block,
            });
        }
    }
}
