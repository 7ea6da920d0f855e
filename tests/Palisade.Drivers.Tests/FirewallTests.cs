using System.Net;
using Palisade.Api;
using Palisade.Drivers.Firewall;

namespace Palisade.Drivers.Tests;

public sealed class FirewallTests : IDisposable
{
    private readonly DriverHarness _h = new();

    public void Dispose() => _h.Dispose();

    private void Start(string rules) =>
        Assert.Equal(Status.Success, _h.Start(new FirewallDriver(), "firewall", ("rules", _h.WriteFile("firewall.rules", rules))));

    private Status Connect(string address, int port, string app = "/usr/bin/curl", int uid = 1000) =>
        _h.Classify(IPAddress.Parse(address).AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? NetworkLayer.ConnectV6 : NetworkLayer.ConnectV4,
            NetworkProtocol.Tcp, address, port, app: app, uid: uid);

    [Fact]
    public void A_rules_file_parses_into_rules_in_order_with_their_conditions()
    {
        Assert.True(FirewallPolicy.TryParse("""
            # sample
            default out block
            block out tcp 10.0.0.0/8 port 443 app /usr/bin/curl   # no TLS to the office network
            allow in tcp port 8080
            allow out udp 2001:db8::1 port 53-54 user 1000
            """, out FirewallPolicy? policy, out string? error), error);

        Assert.False(policy.DefaultOutAllow);
        Assert.True(policy.DefaultInAllow);
        Assert.Equal(3, policy.Rules.Count);
        FirewallRule first = policy.Rules[0];
        Assert.Equal((3, false, Direction.Out, NetworkProtocol.Tcp), (first.Line, first.Allow, first.Direction, first.Protocol));
        Assert.Equal((IPAddress.Parse("10.0.0.0"), 8, 443, 443, "/usr/bin/curl"), (first.Address, first.PrefixLength, first.PortLow, first.PortHigh, first.Application));
        FirewallRule third = policy.Rules[2];
        Assert.Equal((IPAddress.Parse("2001:db8::1"), 128, 53, 54, 1000), (third.Address, third.PrefixLength, third.PortLow, third.PortHigh, third.UserId));
    }

    [Theory]
    [InlineData("deny out tcp", "line 2: unknown action \"deny\"")]
    [InlineData("allow sideways tcp", "line 2: expected a direction")]
    [InlineData("allow out tcp port 70000", "line 2: \"port\" needs a port or a range")]
    [InlineData("allow out tcp port 90-80", "line 2: \"port\" needs a port or a range")]
    [InlineData("allow out tcp 10.0.0.0/33", "line 2: \"10.0.0.0/33\" is not a protocol")]
    [InlineData("allow out tcp app curl", "line 2: \"app\" needs the absolute path")]
    [InlineData("allow out user root", "line 2: \"user\" needs a numeric user id")]
    [InlineData("allow out 10.0.0.1 10.0.0.2", "line 2: \"10.0.0.2\" is not a protocol")]
    [InlineData("default out maybe", "line 2: expected 'default in|out allow|block'")]
    [InlineData("block out sha256 abcd", "line 2: \"sha256\" needs the SHA-256 of a program")]
    [InlineData("block out sha256 zz86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "line 2: \"sha256\" needs the SHA-256 of a program")]
    public void A_bad_line_is_refused_with_its_line_number_and_the_reason(string line, string expected)
    {
        Assert.False(FirewallPolicy.TryParse("allow out tcp port 80\n" + line + "\n", out _, out string? error));
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_folder_rule_blocks_the_programs_below_it_and_leaves_the_others()
    {
        Start("block out app /opt/untrusted/\nallow out any\n");

        Assert.Equal(Status.NetworkAccessDenied, Connect("192.0.2.1", 80, app: "/opt/untrusted/bin/tool"));
        Assert.Equal(Status.Success, Connect("192.0.2.1", 80, app: "/opt/untrusted-not/tool"));
    }

    [Fact]
    public void A_sha256_rule_becomes_a_hash_condition_with_the_digest_of_the_line()
    {
        const string Hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        Assert.True(FirewallPolicy.TryParse("block out sha256 " + Hex + "\n", out FirewallPolicy? policy, out string? error), error);

        NetworkCondition hash = policy.BuildFilters(default)[0].Conditions.Single();

        Assert.Equal(ConditionField.ApplicationHash, hash.Field);
        Assert.Equal(Convert.FromHexString(Hex), hash.Hash.ToArray());
    }

    [Fact]
    public void A_flow_log_value_other_than_on_or_off_fails_the_load()
    {
        Status s = _h.Start(new FirewallDriver(), "firewall", ("flowLog", "yes"));

        Assert.Equal(Status.InvalidParameter, s);
    }

    [Fact]
    public void An_ask_line_becomes_a_callout_filter_of_the_firewalls_sublayer()
    {
        Assert.True(FirewallPolicy.TryParse("ask out tcp port 8080\nallow out any\n", out FirewallPolicy? policy, out string? error), error);

        Assert.True(policy.HasAsk);
        NetworkFilter ask = Assert.Single(policy.BuildFilters(new CallbackCookie(7), new CallbackCookie(9)), f => f.Action == NetworkAction.Callout && f.Layer == NetworkLayer.ConnectV4);
        Assert.Equal((new CallbackCookie(9), 2UL), (ask.Callout, ask.Weight));
    }

    [Fact]
    public void An_ask_line_for_inbound_operations_is_refused()
    {
        Assert.False(FirewallPolicy.TryParse("ask in tcp port 22\n", out _, out string? error));
        Assert.StartsWith("line 1: \"ask\" applies to outbound connections only", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Rules_that_ask_without_a_prompt_port_fail_the_load()
    {
        string rules = _h.WriteFile("firewall.rules", "ask out tcp port 8080\n");

        Assert.Equal(Status.InvalidParameter, _h.Start(new FirewallDriver(), "firewall", ("rules", rules)));
        Assert.Contains("prompt must name", Assert.Single(_h.Events("config-error")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_prompt_that_is_not_a_port_name_fails_the_load_and_says_why()
    {
        string rules = _h.WriteFile("firewall.rules", "ask out tcp port 8080\n");

        Assert.NotEqual(Status.Success, _h.Start(new FirewallDriver(), "firewall", ("rules", rules), ("prompt", "/tmp/a/folder")));
        Assert.Contains("the port \"/tmp/a/folder\" cannot be created", Assert.Single(_h.Events("config-error")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void With_no_prompt_program_listening_an_ask_line_gives_its_no_answer_verdict_at_once()
    {
        string rules = _h.WriteFile("firewall.rules", "ask out tcp port 8080\nallow out any\n");
        Assert.Equal(Status.Success, _h.Start(new FirewallDriver(), "firewall", ("rules", rules), ("prompt", "fw-prompt"), ("onTimeout", "block")));

        Assert.Equal(Status.NetworkAccessDenied, Connect("127.0.0.1", 8080));
        Assert.Equal(Status.Success, Connect("127.0.0.1", 8081));
    }

    [Fact]
    public void A_bad_rules_file_fails_the_load_and_reports_the_line()
    {
        string rules = _h.WriteFile("firewall.rules", "allow out tcp port 80\n\nblock out tcp port http\n");

        Assert.Equal(Status.InvalidParameter, _h.Start(new FirewallDriver(), "firewall", ("rules", rules)));

        Assert.Contains("line 3:", Assert.Single(_h.Events("config-error")).Message, StringComparison.Ordinal);
        Assert.Equal(0, _h.Kernel.Network.Filters.Count);
    }

    [Fact]
    public void A_block_for_one_application_network_and_port_blocks_exactly_that()
    {
        Start("block out tcp 10.0.0.0/8 port 443 app /usr/bin/curl\n");

        Assert.Equal(Status.NetworkAccessDenied, Connect("10.1.2.3", 443));
        Assert.Equal(Status.Success, Connect("10.1.2.3", 443, app: "/usr/bin/wget"));
        Assert.Equal(Status.Success, Connect("10.1.2.3", 80));
        Assert.Equal(Status.Success, Connect("11.0.0.1", 443));
    }

    [Fact]
    public void An_IPv6_rule_blocks_its_network_and_leaves_IPv4_alone()
    {
        Start("block out 2001:db8::/32\n");

        Assert.Equal(Status.NetworkAccessDenied, Connect("2001:db8::7", 443));
        Assert.Equal(Status.Success, Connect("2001:db9::7", 443));
        Assert.Equal(Status.Success, Connect("10.0.0.1", 443));
    }

    [Fact]
    public void A_port_range_is_inclusive_and_the_default_policy_decides_the_rest()
    {
        Start("default out block\nallow out tcp port 8000-8080\n");

        Assert.Equal(Status.Success, Connect("127.0.0.1", 8000));
        Assert.Equal(Status.Success, Connect("::1", 8080));
        Assert.Equal(Status.NetworkAccessDenied, Connect("127.0.0.1", 8081));
        Assert.Equal(Status.NetworkAccessDenied, Connect("127.0.0.1", 7999));
    }

    [Fact]
    public void The_first_matching_line_wins()
    {
        Start("allow out tcp 10.0.0.5\nblock out tcp 10.0.0.0/8\n");

        Assert.Equal(Status.Success, Connect("10.0.0.5", 22));
        Assert.Equal(Status.NetworkAccessDenied, Connect("10.0.0.6", 22));
    }

    [Fact]
    public void An_inbound_allow_opens_bind_listen_and_accept_on_its_port_only()
    {
        Start("default in block\nallow in tcp port 8080\n");

        Assert.Equal(Status.Success, _h.Classify(NetworkLayer.BindV4, NetworkProtocol.Tcp, null, 0, localPort: 8080));
        Assert.Equal(Status.Success, _h.Classify(NetworkLayer.ListenV6, NetworkProtocol.Tcp, null, 0, localPort: 8080));
        Assert.Equal(Status.Success, _h.Classify(NetworkLayer.AcceptV4, NetworkProtocol.Tcp, "192.0.2.1", 50000, localPort: 8080));
        Assert.Equal(Status.NetworkAccessDenied, _h.Classify(NetworkLayer.BindV4, NetworkProtocol.Tcp, null, 0, localPort: 9090));
        Assert.Equal(Status.NetworkAccessDenied, _h.Classify(NetworkLayer.BindV4, NetworkProtocol.Udp, null, 0, localPort: 8080));
    }

    [Fact]
    public void An_inbound_block_of_some_peers_still_lets_the_program_listen_for_the_others()
    {
        Start("block in tcp 192.168.0.0/16 port 22\n");

        Assert.Equal(Status.Success, _h.Classify(NetworkLayer.ListenV4, NetworkProtocol.Tcp, null, 0, localPort: 22));
        Assert.Equal(Status.NetworkAccessDenied, _h.Classify(NetworkLayer.AcceptV4, NetworkProtocol.Tcp, "192.168.1.1", 40000, localPort: 22));
        Assert.Equal(Status.Success, _h.Classify(NetworkLayer.AcceptV4, NetworkProtocol.Tcp, "10.0.0.1", 40000, localPort: 22));
    }

    [Fact]
    public void A_user_rule_applies_to_that_user_only()
    {
        Start("block out user 1001\n");

        Assert.Equal(Status.NetworkAccessDenied, Connect("127.0.0.1", 80, uid: 1001));
        Assert.Equal(Status.Success, Connect("127.0.0.1", 80, uid: 1000));
    }

    [Fact]
    public void The_driver_registers_a_firewall_product_and_unloads_cleanly()
    {
        var driver = new FirewallDriver();
        var record = new Palisade.Kernel.Drivers.DriverObject("firewall", "tests", "1.0", "", "");
        Assert.Equal(Status.Success, _h.Kernel.StartDriver(record, driver, new Dictionary<string, string>()));
        Assert.Equal(SecurityProductKind.Firewall, Assert.Single(_h.Kernel.SecurityCenter.List()).Kind);
        Assert.NotEqual(0, _h.Kernel.Network.Filters.Count);

        Assert.Equal(Status.Success, _h.Kernel.StopDriver(record));

        Assert.Equal(0, _h.Kernel.Network.Filters.Count + _h.Kernel.Network.Sublayers.Count);
        Assert.Empty(_h.Kernel.SecurityCenter.List());
    }
}
