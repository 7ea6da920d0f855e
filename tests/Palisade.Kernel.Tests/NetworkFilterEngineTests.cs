using System.Net;
using Palisade.Api;
using Palisade.Kernel.Dispatch;

namespace Palisade.Kernel.Tests;

public sealed class NetworkFilterEngineTests : IDisposable
{
    private readonly TestKernel _k = new();

    public void Dispose() => _k.Dispose();

    private Status Connect(string address, int port, string app = "/usr/bin/curl")
    {
        IPAddress ip = IPAddress.Parse(address);
        var f = new ServiceFrame
        {
            Network = new NetworkClassifyContext
            {
                Layer = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? NetworkLayer.ConnectV6 : NetworkLayer.ConnectV4,
                Protocol = NetworkProtocol.Tcp,
                RemoteAddress = ip,
                RemotePort = port,
                ApplicationPath = app,
                ProcessId = 5,
            },
        };
        return _k.Kernel.SystemCall(SystemService.NetworkClassify, ref f);
    }

    private static NetworkFilter F(string name, CallbackCookie sub, NetworkAction action, ulong weight = 0, NetworkFilterFlags flags = NetworkFilterFlags.None, params NetworkCondition[] conditions) =>
        new() { Name = name, Layer = NetworkLayer.ConnectV4, Sublayer = sub, Action = action, Weight = weight, Flags = flags, Conditions = conditions };

    [Fact]
    public void With_no_filters_everything_is_permitted()
    {
        Assert.Equal(Status.Success, Connect("127.0.0.1", 80));
    }

    [Fact]
    public void Within_a_sublayer_the_highest_weight_match_decides()
    {
        _k.Start(c =>
        {
            c.Network.AddSublayer("fw", 100, out CallbackCookie sub);
            c.Network.AddFilter(F("block all", sub, NetworkAction.Block, weight: 1), out _);
            return c.Network.AddFilter(F("allow 8080", sub, NetworkAction.Permit, weight: 10, conditions: NetworkCondition.RemotePort(8080, 8080)), out _);
        });
        Assert.Equal(Status.Success, Connect("127.0.0.1", 8080));
        Assert.Equal(Status.NetworkAccessDenied, Connect("127.0.0.1", 8081));
    }

    [Fact]
    public void Across_sublayers_block_overrides_permit()
    {
        _k.Start(c =>
        {
            c.Network.AddSublayer("high", 200, out CallbackCookie high);
            c.Network.AddSublayer("low", 100, out CallbackCookie low);
            c.Network.AddFilter(F("permit", high, NetworkAction.Permit), out _);
            return c.Network.AddFilter(F("block", low, NetworkAction.Block), out _);
        });
        Assert.Equal(Status.NetworkAccessDenied, Connect("10.1.2.3", 443));
    }

    [Fact]
    public void A_hard_permit_beats_a_block_from_a_lower_sublayer_but_not_a_veto()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        c.Network.AddSublayer("high", 200, out CallbackCookie high);
        c.Network.AddSublayer("low", 100, out CallbackCookie low);
        c.Network.AddFilter(F("hard permit", high, NetworkAction.Permit, flags: NetworkFilterFlags.HardPermit), out _);
        c.Network.AddFilter(F("block", low, NetworkAction.Block), out CallbackCookie block);
        Assert.Equal(Status.Success, Connect("10.1.2.3", 443));
        c.Network.DeleteFilter(block);
        c.Network.AddFilter(F("veto", low, NetworkAction.Block, flags: NetworkFilterFlags.Veto), out _);
        Assert.Equal(Status.NetworkAccessDenied, Connect("10.1.2.3", 443));
    }

    [Fact]
    public void A_callout_that_continues_passes_to_the_next_filter_and_one_that_blocks_decides()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        c.Network.AddSublayer("s", 1, out CallbackCookie sub);
        c.Network.RegisterCallout("inspect", (in NetworkClassifyContext ctx) => ctx.RemotePort == 25 ? ClassifyResult.Block : ClassifyResult.Continue, out CallbackCookie callout);
        c.Network.AddFilter(new NetworkFilter { Name = "callout", Layer = NetworkLayer.ConnectV4, Sublayer = sub, Action = NetworkAction.Callout, Callout = callout, Weight = 10 }, out _);
        c.Network.AddFilter(F("permit", sub, NetworkAction.Permit, weight: 1), out _);
        Assert.Equal(Status.NetworkAccessDenied, Connect("192.0.2.1", 25));
        Assert.Equal(Status.Success, Connect("192.0.2.1", 80));
        Assert.Equal(Status.InvalidDeviceState, c.Network.UnregisterCallout(callout));
    }

    [Fact]
    public void Address_prefix_and_application_conditions_match_as_documented()
    {
        _k.Start(c =>
        {
            c.Network.AddSublayer("s", 1, out CallbackCookie sub);
            return c.Network.AddFilter(F("block lan for curl", sub, NetworkAction.Block, conditions:
                [NetworkCondition.RemoteAddress(IPAddress.Parse("192.168.0.0"), 16), NetworkCondition.ApplicationPath("/usr/bin/curl")]), out _);
        });
        Assert.Equal(Status.NetworkAccessDenied, Connect("192.168.44.1", 80));
        Assert.Equal(Status.Success, Connect("192.169.0.1", 80));
        Assert.Equal(Status.Success, Connect("192.168.44.1", 80, app: "/usr/bin/python3"));
    }

    [Fact]
    public void Bad_filters_are_refused_with_a_status()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        c.Network.AddSublayer("s", 1, out CallbackCookie sub);
        Assert.Equal(Status.InvalidParameter, c.Network.AddFilter(F("v6 on v4", sub, NetworkAction.Block, conditions: NetworkCondition.RemoteAddress(IPAddress.IPv6Loopback, 128)), out _));
        Assert.Equal(Status.InvalidParameter, c.Network.AddFilter(F("prefix", sub, NetworkAction.Block, conditions: NetworkCondition.RemoteAddress(IPAddress.Loopback, 33)), out _));
        Assert.Equal(Status.InvalidParameter, c.Network.AddFilter(F("ports", sub, NetworkAction.Block, conditions: NetworkCondition.RemotePort(10, 5)), out _));
        Assert.Equal(Status.InvalidParameter, c.Network.AddFilter(F("relative app", sub, NetworkAction.Block, conditions: NetworkCondition.ApplicationPath("curl")), out _));
        Assert.Equal(Status.InvalidParameter, c.Network.AddFilter(new NetworkFilter { Name = "callout without callout", Layer = NetworkLayer.ConnectV4, Sublayer = sub, Action = NetworkAction.Callout }, out _));
        Assert.Equal(Status.InvalidHandle, c.Network.AddFilter(F("unknown sublayer", new CallbackCookie(12345), NetworkAction.Block), out _));
        Assert.Equal(Status.InvalidParameter, c.Network.AddFilter(null!, out _));
        Assert.Equal(Status.ObjectNameCollision, c.Network.AddSublayer("s", 2, out _));
        Assert.Equal(Status.Success, c.Network.AddFilter(F("ok", sub, NetworkAction.Block), out CallbackCookie ok));
        Assert.Equal(Status.InvalidDeviceState, c.Network.DeleteSublayer(sub));
        Assert.Equal(Status.Success, c.Network.DeleteFilter(ok));
        Assert.Equal(Status.Success, c.Network.DeleteSublayer(sub));
    }

    [Fact]
    public void Unloading_removes_the_drivers_filters_callouts_and_sublayers()
    {
        _k.Start(c =>
        {
            c.Network.AddSublayer("s", 1, out CallbackCookie sub);
            c.Network.RegisterCallout("co", (in NetworkClassifyContext _) => ClassifyResult.Continue, out _);
            return c.Network.AddFilter(F("block", sub, NetworkAction.Block), out _);
        }, out var record);
        Assert.Equal(Status.NetworkAccessDenied, Connect("127.0.0.1", 1));
        _k.Kernel.StopDriver(record);
        Assert.Equal(Status.Success, Connect("127.0.0.1", 1));
        Assert.Equal(0, _k.Kernel.Network.Sublayers.Count + _k.Kernel.Network.Callouts.Count + _k.Kernel.Network.Filters.Count);
    }
}
