using System.Net;
using System.Security.Cryptography;
using Palisade.Api;
using Palisade.Kernel.Hosting;

namespace Palisade.Kernel.Tests;

/// <summary>Issue 14, network: application folder and hash conditions, the process in the classify context, flow callbacks.</summary>
public sealed class NetworkDraft2Tests : IDisposable
{
    private static readonly byte[] s_digest = SHA256.HashData("program"u8);
    private readonly TestKernel _k = new();
    private readonly Requester _requester = new(Environment.ProcessId, Environment.CurrentManagedThreadId);

    public void Dispose() => _k.Dispose();

    private Status Connect(string app, ReadOnlyMemory<byte> digest = default) => _k.Host.ClassifyNetwork(in _requester, new NetworkRequest
    {
        Operation = NetworkOperation.Connect,
        Protocol = NetworkProtocol.Tcp,
        RemoteAddress = IPAddress.Loopback,
        RemotePort = 80,
        ApplicationPath = app,
        ApplicationHash = digest,
    });

    private void Block(NetworkCondition condition) => _k.Start(c =>
    {
        c.Network.AddSublayer("fw", 100, out CallbackCookie sub);
        return c.Network.AddFilter(new NetworkFilter { Name = "block", Layer = NetworkLayer.ConnectV4, Sublayer = sub, Action = NetworkAction.Block, Conditions = [condition] }, out _);
    });

    [Fact]
    public void A_folder_condition_matches_programs_in_the_folder_and_below_only()
    {
        Block(NetworkCondition.ApplicationFolder("/opt/tools/"));

        Assert.Equal(Status.NetworkAccessDenied, Connect("/opt/tools/curl"));
        Assert.Equal(Status.NetworkAccessDenied, Connect("/opt/tools/bin/wget"));
        Assert.Equal(Status.Success, Connect("/opt/toolshed/curl"));
        Assert.Equal(Status.Success, Connect("/usr/bin/curl"));
    }

    [Fact]
    public void A_hash_condition_matches_the_image_digest_only_and_the_host_is_asked_for_it_only_there()
    {
        Assert.False(_k.Host.TestsApplicationHash(NetworkOperation.Connect, ipv6: false));
        Block(NetworkCondition.ApplicationHash(s_digest));

        Assert.True(_k.Host.TestsApplicationHash(NetworkOperation.Connect, ipv6: false));
        Assert.False(_k.Host.TestsApplicationHash(NetworkOperation.Bind, ipv6: false));
        Assert.Equal(Status.NetworkAccessDenied, Connect("/anywhere/program", s_digest));
        Assert.Equal(Status.Success, Connect("/anywhere/program", SHA256.HashData("another"u8)));
        Assert.Equal(Status.Success, Connect("/anywhere/program"));
    }

    [Theory]
    [InlineData("relative/folder")]
    [InlineData("")]
    public void A_folder_condition_with_a_path_that_is_not_absolute_is_refused(string folder)
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        c.Network.AddSublayer("fw", 100, out CallbackCookie sub);

        Status s = c.Network.AddFilter(new NetworkFilter
        {
            Name = "f", Layer = NetworkLayer.ConnectV4, Sublayer = sub, Action = NetworkAction.Block, Conditions = [NetworkCondition.ApplicationFolder(folder)],
        }, out _);

        Assert.Equal(Status.InvalidParameter, s);
    }

    [Fact]
    public void A_hash_condition_of_another_length_than_32_bytes_is_refused()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        c.Network.AddSublayer("fw", 100, out CallbackCookie sub);

        Status s = c.Network.AddFilter(new NetworkFilter
        {
            Name = "f", Layer = NetworkLayer.ConnectV4, Sublayer = sub, Action = NetworkAction.Block, Conditions = [NetworkCondition.ApplicationHash(new byte[20])],
        }, out _);

        Assert.Equal(Status.InvalidParameter, s);
    }

    [Fact]
    public void A_callout_sees_the_image_identity_the_digest_and_the_arguments_the_host_gave()
    {
        NetworkClassifyContext seen = default;
        _k.Start(c =>
        {
            c.Network.AddSublayer("fw", 100, out CallbackCookie sub);
            c.Network.RegisterCallout("watch", (in NetworkClassifyContext ctx) =>
            {
                seen = ctx;
                return ClassifyResult.Continue;
            }, out CallbackCookie callout);
            return c.Network.AddFilter(new NetworkFilter { Name = "watch", Layer = NetworkLayer.ConnectV4, Sublayer = sub, Action = NetworkAction.Callout, Callout = callout }, out _);
        });

        _ = _k.Host.ClassifyNetwork(in _requester, new NetworkRequest
        {
            Operation = NetworkOperation.Connect,
            RemoteAddress = IPAddress.Loopback,
            RemotePort = 80,
            ApplicationPath = "/usr/bin/curl",
            ApplicationFile = new FileIdentity(8, 1234),
            ApplicationHash = s_digest,
            Arguments = ["curl", "-s", "http://127.0.0.1/"],
        });

        Assert.Equal(new FileIdentity(8, 1234), seen.ApplicationFile);
        Assert.Equal(s_digest, seen.ApplicationHash.ToArray());
        Assert.Equal(["curl", "-s", "http://127.0.0.1/"], seen.Arguments);
        Assert.Equal(Environment.ProcessId, seen.ProcessId);
    }

    [Fact]
    public void Flow_callbacks_are_told_established_then_closed_with_one_id_and_the_permitting_filter()
    {
        var flows = new List<NetworkFlowInfo>();
        _k.Start(c =>
        {
            c.Network.AddSublayer("fw", 100, out CallbackCookie sub);
            c.Network.AddFilter(new NetworkFilter { Name = "allow web", Layer = NetworkLayer.ConnectV4, Sublayer = sub, Action = NetworkAction.Permit }, out _);
            return c.Network.RegisterFlowCallback((in NetworkFlowInfo f) => flows.Add(f), out _);
        }, name: "flowdriver");
        var request = new NetworkRequest { Operation = NetworkOperation.Connect, Protocol = NetworkProtocol.Tcp, RemoteAddress = IPAddress.Loopback, RemotePort = 80, LocalPort = 40001, ApplicationPath = "/usr/bin/curl" };
        Assert.Equal(Status.Success, _k.Host.ClassifyNetwork(in _requester, in request, out string? filter, out string? driver));

        NetworkFlowInfo established = _k.Host.FlowEstablished(in _requester, in request, filter, driver);
        _k.Host.FlowClosed(in established);

        Assert.Equal([NetworkFlowEvent.Established, NetworkFlowEvent.Closed], flows.Select(f => f.Event));
        Assert.Equal(established.FlowId, flows[1].FlowId);
        Assert.NotEqual(0, established.FlowId);
        Assert.Equal("allow web", flows[1].DecidingFilter);
        Assert.Equal("flowdriver", flows[1].DecidingDriver);
        Assert.Equal(40001, flows[0].Classify.LocalPort);
        Assert.Equal(NetworkLayer.ConnectV4, flows[0].Classify.Layer);
    }

    [Fact]
    public void A_flow_callback_makes_the_host_watch_the_network_and_unregistering_it_stops_the_calls()
    {
        int calls = 0;
        CallbackCookie cookie = default;
        IDriverContext c = _k.Start(c => c.Network.RegisterFlowCallback((in NetworkFlowInfo _) => calls++, out cookie));
        Assert.True(_k.Host.HasFlowCallbacks);
        Assert.True((_k.Host.Interests & HostInterests.Network) != 0);
        var request = new NetworkRequest { Operation = NetworkOperation.Accept, RemoteAddress = IPAddress.Loopback, ApplicationPath = "/bin/x" };
        _ = _k.Host.FlowEstablished(in _requester, in request, null, null);

        Assert.Equal(Status.Success, c.Network.UnregisterFlowCallback(cookie));
        _ = _k.Host.FlowEstablished(in _requester, in request, null, null);

        Assert.Equal(1, calls);
        Assert.False(_k.Host.HasFlowCallbacks);
        Assert.Equal(Status.InvalidHandle, c.Network.UnregisterFlowCallback(cookie));
    }
}
