using System;
using System.Collections.Generic;
using System.Net;

namespace Palisade.Api;

/// <summary>
/// The network filter engine, in the manner of the Windows Filtering Platform: filters with conditions and weights,
/// grouped in weighted sublayers, on layers that correspond to the points where a connection is authorized.
/// </summary>
/// <remarks>
/// <para><b>Arbitration</b> (how one verdict is reached for an operation at a layer):</para>
/// <list type="number">
/// <item>Sublayers are evaluated from the highest weight down. Within a sublayer, the filters on that layer whose
/// conditions all match are tried from the highest weight down; equal weights go by the order they were added.</item>
/// <item>Within a sublayer, the first matching filter whose action is <see cref="NetworkAction.Permit"/> or
/// <see cref="NetworkAction.Block"/> decides for that sublayer. A <see cref="NetworkAction.Callout"/> filter calls
/// its callout, which returns permit, block or <see cref="ClassifyResult.Continue"/>; continue passes to the next
/// filter of the sublayer. A sublayer with no deciding filter has no say.</item>
/// <item>Across sublayers, <b>block overrides permit</b>: the final verdict is block when any sublayer blocked,
/// except that a <b>hard permit</b> (a permit from a filter with <see cref="NetworkFilterFlags.HardPermit"/>, which
/// clears the override right) cannot be overridden by a block from a lower-weight sublayer — unless that block is a
/// <b>veto</b> (a filter with <see cref="NetworkFilterFlags.Veto"/>), which overrides even a hard permit and is
/// reported as a veto in the event stream. A block from a higher-weight sublayer always beats a hard permit from a
/// lower one.</item>
/// <item>When no sublayer decides, the operation is permitted (the default of an open system).</item>
/// </list>
/// <para><b>Effect.</b> A blocked connect, bind, listen or send with an address fails with <c>EACCES</c> (the
/// errno of a Linux host firewall rejecting at the socket layer). Accept is decided per connection, with its peer: the
/// host accepts the connection itself, classifies it at the accept layer, and only a permitted connection reaches the
/// guest. A blocked connection is reset (its peer sees <c>ECONNRESET</c>) and the guest's accept goes on to the next
/// one: a blocking accept waits on, a non-blocking one with no further connection pending fails with <c>EAGAIN</c>, as
/// if the blocked connection had never arrived.</para>
/// <para><b>Limits.</b> At most 64 sublayers, 4096 filters and 64 callouts; names are 1–128 characters; a filter
/// has at most 16 conditions.</para>
/// <para><b>Holding a classification.</b> A callout may hold the operation until it knows the answer (an interactive
/// prompt, a reputation lookup), in the manner of FwpsPendOperation: it calls <see cref="PendClassify"/> and returns
/// <see cref="ClassifyResult.Pending"/>; the driver completes it from any thread with <see cref="CompletePendedClassify"/>,
/// and the classification goes on from that filter as if the callout had returned that result. Only the guest thread
/// whose connect, bind, listen, accept or send is held waits.</para>
/// <para><b>Containment.</b> A callout that throws, overruns its 5-second deadline or returns an undefined result faults:
/// the callout's timeout verdict applies (<see cref="TimeoutVerdict.Allow"/>: <see cref="ClassifyResult.Continue"/>;
/// <see cref="TimeoutVerdict.Deny"/>: <see cref="ClassifyResult.Block"/>), a <c>driver-fault</c> event names the driver, the
/// callout and the operation, and the driver's fault callbacks are told. The callout is disabled only as its
/// <see cref="CallbackOptions.DisableAfterFaults"/> says.</para>
/// </remarks>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "host firewall", "per-application network control", "network monitoring")]
public interface INetworkFilterEngine
{
    /// <summary>Adds a sublayer (FwpmSubLayerAdd).</summary>
    /// <param name="name">The sublayer's name, 1–128 characters, unique.</param>
    /// <param name="weight">Its weight: higher weights are evaluated first.</param>
    /// <param name="cookie">On success, names the sublayer for filters and for <see cref="DeleteSublayer"/>.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidParameter"/>, <see cref="Status.ObjectNameCollision"/>
    /// or <see cref="Status.TooManyRegistrations"/>.</returns>
    Status AddSublayer(string name, ushort weight, out CallbackCookie cookie);

    /// <summary>Deletes a sublayer; it must hold no filters.</summary>
    /// <param name="cookie">The sublayer's cookie.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidHandle"/> or <see cref="Status.InvalidDeviceState"/> when filters remain.</returns>
    Status DeleteSublayer(CallbackCookie cookie);

    /// <summary>Registers a callout: a classify function that filters with <see cref="NetworkAction.Callout"/> call.</summary>
    /// <param name="name">The callout's name, 1–128 characters, unique.</param>
    /// <param name="classify">The classify function. Must not be null.</param>
    /// <param name="cookie">On success, names the callout for filters and for <see cref="UnregisterCallout"/>.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidParameter"/>, <see cref="Status.ObjectNameCollision"/>
    /// or <see cref="Status.TooManyRegistrations"/>.</returns>
    Status RegisterCallout(string name, CalloutClassifyCallback classify, out CallbackCookie cookie);

    /// <summary>Unregisters a callout; filters that use it must be deleted first. After it returns, its classify
    /// callback is not running and is not called again.</summary>
    /// <remarks>Run-down, as ExWaitForRundownProtectionRelease: no call of its classify callback starts once the removal began, and
    /// the method returns only after every call that had started has returned. Called from inside one of its classify calls on the
    /// thread that runs it (a callback that removes its own registration), it waits for the calls on other threads only
    /// and does not deadlock: it returns <see cref="Status.Success"/>, and the calling callback then finishes normally
    /// (its verdict is used). Do not call it while holding a lock that the classify callback might take: it waits for them.</remarks>
    /// <param name="cookie">The callout's cookie.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidHandle"/> or <see cref="Status.InvalidDeviceState"/> when filters use it.</returns>
    Status UnregisterCallout(CallbackCookie cookie);

    /// <summary>Adds a filter (FwpmFilterAdd). It applies to operations that start after this call returns.</summary>
    /// <param name="filter">The filter.</param>
    /// <param name="cookie">On success, names the filter for <see cref="DeleteFilter"/>.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> when the definition is null, the name
    /// is out of range, a condition is null or does not fit the layer's family, there are more than 16 conditions,
    /// or the action is a callout without a callout (or the other way round); <see cref="Status.InvalidHandle"/> when
    /// the sublayer or callout is unknown; <see cref="Status.TooManyRegistrations"/>.</returns>
    Status AddFilter(NetworkFilter filter, out CallbackCookie cookie);

    /// <summary>Deletes a filter.</summary>
    /// <param name="cookie">The filter's cookie.</param>
    /// <returns><see cref="Status.Success"/> or <see cref="Status.InvalidHandle"/>.</returns>
    Status DeleteFilter(CallbackCookie cookie);

    /// <summary>
    /// Holds the classification whose callout of this driver runs on the calling thread (FwpsPendOperation): call it inside
    /// the classify function, then return <see cref="ClassifyResult.Pending"/>; complete it later from any thread with
    /// <see cref="CompletePendedClassify"/>. A completion that comes before the callout returned is kept.
    /// </summary>
    /// <param name="context">The operation the classify function received (its <c>in</c> parameter, passed on).</param>
    /// <param name="cancelCallback">Told if the kernel ends the hold without a completion (timeout, the guest gone, the
    /// callout removed); null for no notification.</param>
    /// <param name="pended">On success, the completion handle; otherwise null.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidDeviceState"/> when called outside a classify function
    /// of this driver's callouts, for another operation than the one it received, or a second time in one call;
    /// <see cref="Status.NotSupported"/> when the callout's <see cref="CallbackOptions.MaximumHoldTime"/> is zero or the
    /// operation is not a guest's; <see cref="Status.InsufficientResources"/> when 128 operations are held already.</returns>
    Status PendClassify(in NetworkClassifyContext context, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended);

    /// <summary>
    /// Completes a held classification (FwpsCompleteOperation) with the result the callout would have returned; the
    /// classification goes on from the callout's filter under the arbitration rules. From any thread.
    /// </summary>
    /// <param name="operation">The handle <see cref="PendClassify"/> returned.</param>
    /// <param name="result"><see cref="ClassifyResult.Permit"/>, <see cref="ClassifyResult.Block"/> or <see cref="ClassifyResult.Continue"/>.</param>
    /// <returns><see cref="Status.Success"/> when the result was taken; <see cref="Status.InvalidParameter"/> for a null
    /// handle, a handle of another kind, or a result that is not one of the three (the hold stays);
    /// <see cref="Status.InvalidHandle"/> when the handle is not one of this driver's; <see cref="Status.AlreadyCompleted"/>;
    /// <see cref="Status.IoTimeout"/>; <see cref="Status.Cancelled"/>; <see cref="Status.InvalidDeviceState"/> when the callout
    /// withdrew it. Never throws.</returns>
    Status CompletePendedClassify(IPendedOperation operation, ClassifyResult result);

    /// <summary>
    /// Registers a flow callback (the ALE flow-established layer and a callout's flow-delete function of WFP): it is told
    /// of each flow a guest establishes and, later, of its end. A flow is a connected socket of IPv4 or IPv6 (TCP, or a
    /// connected UDP socket): established after a connect that succeeded (a blocking connect, or a non-blocking one once
    /// it returned 0) or an accept the filters permitted; closed when the guest's last descriptor of that socket is gone.
    /// </summary>
    /// <remarks>
    /// <para>Both notifications carry the same <see cref="NetworkFlowInfo.FlowId"/> and the classification that decided
    /// the flow (<see cref="NetworkFlowInfo.Classify"/>, with the socket's local address and port as Linux chose them).
    /// Established is told on the thread that served the guest's call, as that call returns (for a connect just before
    /// the guest sees its result, for an accept just after the connection was given to it); closed is told
    /// from the kernel's flow sweep, which looks at the host's sockets (sock_diag) every
    /// <see cref="FlowSweepMilliseconds"/>: a flow is reported closed at most that long after its socket's last descriptor
    /// was closed (by close, exit or exec), or when the run ends. Flows established before the callback was registered
    /// are not reported closed to it. A connect that fails, a non-blocking connect still in progress and an accept the
    /// filters blocked establish no flow.</para>
    /// <para>Callbacks of all drivers run in registration order; one that throws or overruns its deadline is contained
    /// as every callback is. At most 64 flow callbacks.</para>
    /// </remarks>
    /// <param name="callback">The callback. Must not be null.</param>
    /// <param name="cookie">On success, names the registration for <see cref="UnregisterFlowCallback"/>.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidParameter"/> for a null callback, or
    /// <see cref="Status.TooManyRegistrations"/>.</returns>
    Status RegisterFlowCallback(NetworkFlowCallback callback, out CallbackCookie cookie);

    /// <summary>Unregisters a flow callback. After it returns, the callback is not running and is not called again
    /// (run-down, as for <see cref="UnregisterCallout"/>).</summary>
    /// <param name="cookie">The registration's cookie.</param>
    /// <returns><see cref="Status.Success"/> or <see cref="Status.InvalidHandle"/>.</returns>
    Status UnregisterFlowCallback(CallbackCookie cookie);

    /// <summary>The period of the flow sweep that finds closed flows, in milliseconds.</summary>
    const int FlowSweepMilliseconds = 200;
}

/// <summary>The layers where filters apply (the ALE authorization layers of WFP).</summary>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "host firewall")]
public enum NetworkLayer
{
    /// <summary>An outbound connection or a send with an address, IPv4 (FWPM_LAYER_ALE_AUTH_CONNECT_V4).</summary>
    ConnectV4,
    /// <summary>An outbound connection or a send with an address, IPv6.</summary>
    ConnectV6,
    /// <summary>A bind to a local address and port, IPv4 (FWPM_LAYER_ALE_RESOURCE_ASSIGNMENT_V4).</summary>
    BindV4,
    /// <summary>A bind, IPv6.</summary>
    BindV6,
    /// <summary>A listen, IPv4 (FWPM_LAYER_ALE_AUTH_LISTEN_V4).</summary>
    ListenV4,
    /// <summary>A listen, IPv6.</summary>
    ListenV6,
    /// <summary>An accepted inbound connection, IPv4 (FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4).</summary>
    AcceptV4,
    /// <summary>An accepted inbound connection, IPv6.</summary>
    AcceptV6,
}

/// <summary>What a filter does when its conditions match.</summary>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "host firewall")]
public enum NetworkAction
{
    /// <summary>Permit.</summary>
    Permit,
    /// <summary>Block.</summary>
    Block,
    /// <summary>Call the filter's callout, which decides.</summary>
    Callout,
}

/// <summary>Arbitration flags of a filter.</summary>
[Flags]
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "host firewall")]
public enum NetworkFilterFlags
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary>A permit that lower-weight sublayers cannot override with a block (clears the override right).</summary>
    HardPermit = 1,
    /// <summary>A block that overrides even a hard permit from a higher-weight sublayer.</summary>
    Veto = 2,
}

/// <summary>What a callout's classify function returns.</summary>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "per-application network control")]
public enum ClassifyResult
{
    /// <summary>No opinion: go on with the next filter of the sublayer.</summary>
    Continue,
    /// <summary>Permit.</summary>
    Permit,
    /// <summary>Block.</summary>
    Block,
    /// <summary>Held, to be decided later: valid only after a successful <see cref="INetworkFilterEngine.PendClassify"/> in the same call.</summary>
    Pending,
}

/// <summary>The protocol of a socket.</summary>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "host firewall")]
public enum NetworkProtocol
{
    /// <summary>Any other protocol.</summary>
    Other = 0,
    /// <summary>TCP (6).</summary>
    Tcp = 6,
    /// <summary>UDP (17).</summary>
    Udp = 17,
}

/// <summary>The fields a condition can test.</summary>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "host firewall")]
public enum ConditionField
{
    /// <summary>The remote address (with a prefix length).</summary>
    RemoteAddress,
    /// <summary>The local address (with a prefix length).</summary>
    LocalAddress,
    /// <summary>The remote port (a range).</summary>
    RemotePort,
    /// <summary>The local port (a range).</summary>
    LocalPort,
    /// <summary>The protocol.</summary>
    Protocol,
    /// <summary>The absolute path of the program of the process (FWPM_CONDITION_ALE_APP_ID); exact match.</summary>
    ApplicationPath,
    /// <summary>The real user id of the process.</summary>
    UserId,
    /// <summary>The folder of the program of the process: its absolute path lies in that folder or below it.</summary>
    ApplicationFolder,
    /// <summary>The SHA-256 digest of the program's image: the file the process runs, read whole.</summary>
    ApplicationHash,
}

/// <summary>One condition of a filter. Make conditions with the static methods; all conditions of a filter must match.</summary>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "host firewall")]
public sealed class NetworkCondition
{
    private NetworkCondition(ConditionField field) => Field = field;

    /// <summary>The field tested.</summary>
    public ConditionField Field { get; }

    /// <summary>For address conditions, the network address.</summary>
    public IPAddress? Address { get; private init; }

    /// <summary>For address conditions, the prefix length (0–32 for IPv4, 0–128 for IPv6).</summary>
    public int PrefixLength { get; private init; }

    /// <summary>For port conditions (<see cref="ConditionField.RemotePort"/>, <see cref="ConditionField.LocalPort"/>), the lowest port matched.</summary>
    public int LowPort { get; private init; }

    /// <summary>For port conditions, the highest port matched (inclusive).</summary>
    public int HighPort { get; private init; }

    /// <summary>For <see cref="ConditionField.Protocol"/> conditions, the protocol matched.</summary>
    public NetworkProtocol MatchedProtocol { get; private init; }

    /// <summary>For <see cref="ConditionField.UserId"/> conditions, the real user id matched.</summary>
    public int MatchedUserId { get; private init; }

    /// <summary>For <see cref="ConditionField.ApplicationPath"/> and <see cref="ConditionField.ApplicationFolder"/> conditions,
    /// the path (for a folder, without a trailing slash, except for the root "/").</summary>
    public string? Path { get; private init; }

    /// <summary>For <see cref="ConditionField.ApplicationHash"/> conditions, the SHA-256 digest matched (32 bytes).</summary>
    public ReadOnlyMemory<byte> Hash { get; private init; }

    /// <summary>Matches a remote address within <paramref name="address"/>/<paramref name="prefixLength"/>.</summary>
    /// <param name="address">The network address. Must not be null.</param>
    /// <param name="prefixLength">The prefix length; out-of-range values make <see cref="INetworkFilterEngine.AddFilter"/> fail.</param>
    /// <returns>The condition.</returns>
    public static NetworkCondition RemoteAddress(IPAddress address, int prefixLength) =>
        new(ConditionField.RemoteAddress) { Address = address, PrefixLength = prefixLength };

    /// <summary>Matches a local address within <paramref name="address"/>/<paramref name="prefixLength"/>.</summary>
    /// <param name="address">The network address. Must not be null.</param>
    /// <param name="prefixLength">The prefix length.</param>
    /// <returns>The condition.</returns>
    public static NetworkCondition LocalAddress(IPAddress address, int prefixLength) =>
        new(ConditionField.LocalAddress) { Address = address, PrefixLength = prefixLength };

    /// <summary>Matches a remote port in [<paramref name="low"/>, <paramref name="high"/>].</summary>
    /// <param name="low">The lowest port, 0–65535.</param>
    /// <param name="high">The highest port, at least <paramref name="low"/>.</param>
    /// <returns>The condition.</returns>
    public static NetworkCondition RemotePort(int low, int high) => new(ConditionField.RemotePort) { LowPort = low, HighPort = high };

    /// <summary>Matches a local port in [<paramref name="low"/>, <paramref name="high"/>].</summary>
    /// <param name="low">The lowest port, 0–65535.</param>
    /// <param name="high">The highest port, at least <paramref name="low"/>.</param>
    /// <returns>The condition.</returns>
    public static NetworkCondition LocalPort(int low, int high) => new(ConditionField.LocalPort) { LowPort = low, HighPort = high };

    /// <summary>Matches a protocol.</summary>
    /// <param name="protocol">The protocol.</param>
    /// <returns>The condition.</returns>
    public static NetworkCondition Protocol(NetworkProtocol protocol) => new(ConditionField.Protocol) { MatchedProtocol = protocol };

    /// <summary>Matches the program of the process by its absolute path.</summary>
    /// <param name="path">The absolute path. Must not be null or relative.</param>
    /// <returns>The condition.</returns>
    public static NetworkCondition ApplicationPath(string path) => new(ConditionField.ApplicationPath) { Path = path };

    /// <summary>Matches the real user id of the process.</summary>
    /// <param name="userId">The user id.</param>
    /// <returns>The condition.</returns>
    public static NetworkCondition UserId(int userId) => new(ConditionField.UserId) { MatchedUserId = userId };

    /// <summary>
    /// Matches a program in <paramref name="folder"/> or any folder below it, by the canonical path of the image (links
    /// resolved, as <see cref="NetworkClassifyContext.ApplicationPath"/> holds it): <c>/usr/bin</c> matches
    /// <c>/usr/bin/curl</c> and <c>/usr/bin/x/y</c>, not <c>/usr/binaries/z</c>. A trailing slash is ignored.
    /// </summary>
    /// <param name="folder">The folder's absolute path. Must not be null or relative; a relative or empty one makes
    /// <see cref="INetworkFilterEngine.AddFilter"/> fail.</param>
    /// <returns>The condition.</returns>
    public static NetworkCondition ApplicationFolder(string folder) => new(ConditionField.ApplicationFolder) { Path = WithoutTrailingSlash(folder) };

    private static string WithoutTrailingSlash(string folder)
    {
        if (folder is null || folder.Length < 2 || folder[^1] != '/')
        {
            return folder!;
        }

        string trimmed = folder.TrimEnd('/');
        return trimmed.Length == 0 ? "/" : trimmed;
    }

    /// <summary>
    /// Matches a program by the SHA-256 digest of its image: the very file the process runs (read through the process, so
    /// a path replaced since the exec does not matter). The host computes the digest only for layers where some filter has
    /// such a condition, and caches it per file identity and change stamp, so an image rewritten in place is hashed again.
    /// A process whose image cannot be read (gone, unreadable, larger than 1 GiB) matches no hash condition.
    /// </summary>
    /// <param name="sha256">The digest, 32 bytes (copied); any other length makes <see cref="INetworkFilterEngine.AddFilter"/> fail.</param>
    /// <returns>The condition.</returns>
    public static NetworkCondition ApplicationHash(ReadOnlySpan<byte> sha256) => new(ConditionField.ApplicationHash) { Hash = sha256.ToArray() };
}

/// <summary>A filter definition (FWPM_FILTER).</summary>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "host firewall")]
public sealed class NetworkFilter
{
    /// <summary>The filter's name, 1–128 characters (for the event stream; need not be unique).</summary>
    public required string Name { get; init; }

    /// <summary>The layer.</summary>
    public required NetworkLayer Layer { get; init; }

    /// <summary>The sublayer, from <see cref="INetworkFilterEngine.AddSublayer"/>.</summary>
    public required CallbackCookie Sublayer { get; init; }

    /// <summary>The weight within the sublayer; higher is tried first.</summary>
    public ulong Weight { get; init; }

    /// <summary>The conditions; all must match. Empty matches everything.</summary>
    public IReadOnlyList<NetworkCondition> Conditions { get; init; } = Array.Empty<NetworkCondition>();

    /// <summary>The action.</summary>
    public required NetworkAction Action { get; init; }

    /// <summary>For <see cref="NetworkAction.Callout"/>, the callout to call.</summary>
    public CallbackCookie Callout { get; init; }

    /// <summary>Arbitration flags.</summary>
    public NetworkFilterFlags Flags { get; init; }
}

/// <summary>What the filter engine classifies: one operation at one layer.</summary>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "host firewall", "network monitoring")]
public readonly struct NetworkClassifyContext
{
    /// <summary>The layer.</summary>
    public NetworkLayer Layer { get; init; }

    /// <summary>The protocol.</summary>
    public NetworkProtocol Protocol { get; init; }

    /// <summary>
    /// The local address. At bind, the address asked for. At connect of a TCP socket, the socket's address and port as
    /// the connect will use them: a socket not bound yet is first bound by the host to an ephemeral port of the
    /// unspecified address, as Linux would bind it at connect (so <see cref="LocalPort"/> is the port the connection will
    /// have), and this is the unspecified address (<c>0.0.0.0</c> or <c>::</c>) since Linux chooses the source address by
    /// the route while it connects. At accept, the accepted connection's local address and port. At send and listen,
    /// the socket's address when the call is made (its <c>getsockname</c>); for a UDP socket not bound yet, the
    /// unspecified address with port 0. Null only when the host could not read the socket's address.
    /// </summary>
    public IPAddress? LocalAddress { get; init; }

    /// <summary>The local port: the port asked for at bind, the socket's port otherwise (at connect of TCP, the ephemeral
    /// port bound for it); 0 for a UDP socket not bound yet.</summary>
    public int LocalPort { get; init; }

    /// <summary>The remote address: the peer at connect and send, the peer of the incoming connection at accept; null at
    /// bind and listen.</summary>
    public IPAddress? RemoteAddress { get; init; }

    /// <summary>The remote port, or 0.</summary>
    public int RemotePort { get; init; }

    /// <summary>The process.</summary>
    public int ProcessId { get; init; }

    /// <summary>The process's identity for the kernel's life (<see cref="ProcessCreateInfo.ProcessStartKey"/>); 0 when
    /// the kernel has no entry for the process.</summary>
    public long ProcessStartKey { get; init; }

    /// <summary>The absolute path of the process's program.</summary>
    public string ApplicationPath { get; init; }

    /// <summary>The identity of the process's image: the file the process runs (through <c>/proc/PID/exe</c>), default
    /// when the host could not read it.</summary>
    public FileIdentity ApplicationFile { get; init; }

    /// <summary>The SHA-256 digest of the process's image (32 bytes) when some filter at this layer has an
    /// <see cref="ConditionField.ApplicationHash"/> condition and the image could be read; empty otherwise.</summary>
    public ReadOnlyMemory<byte> ApplicationHash { get; init; }

    /// <summary>The process's arguments (argv) as the process holds them at the call (<c>/proc/PID/cmdline</c>), or null
    /// when the host could not read them.</summary>
    public IReadOnlyList<string>? Arguments { get; init; }

    /// <summary>The real user id of the process.</summary>
    public int UserId { get; init; }

    /// <summary>
    /// In a classify function, when the operation would time out if this callout held it, on the clock of
    /// <see cref="Environment.TickCount64"/> (milliseconds); 0 when the callout cannot hold it (see
    /// <see cref="FileOperation.HoldDeadline"/>).
    /// </summary>
    public long HoldDeadline { get; init; }
}

/// <summary>A callout's classify function.</summary>
/// <param name="context">The operation.</param>
/// <returns>Permit, block, continue, or (after <see cref="INetworkFilterEngine.PendClassify"/>) pending.</returns>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "per-application network control")]
public delegate ClassifyResult CalloutClassifyCallback(in NetworkClassifyContext context);

/// <summary>Which notification a <see cref="NetworkFlowCallback"/> receives.</summary>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "network monitoring")]
public enum NetworkFlowEvent
{
    /// <summary>The flow is established: the connect succeeded, or the accepted connection was permitted and given to the guest.</summary>
    Established,
    /// <summary>The flow is closed: the guest's last descriptor of its socket is gone.</summary>
    Closed,
}

/// <summary>One flow notification (<see cref="INetworkFilterEngine.RegisterFlowCallback"/>).</summary>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "network monitoring")]
public readonly struct NetworkFlowInfo
{
    /// <summary>Established or closed.</summary>
    public NetworkFlowEvent Event { get; init; }

    /// <summary>The flow's id: unique for the kernel's life, the same in its established and closed notifications.</summary>
    public long FlowId { get; init; }

    /// <summary>The classification of the connect or accept that established the flow (its layer is a connect or an
    /// accept layer), with the local address and port of the connected socket as Linux reports them once it is
    /// established (<c>getsockname</c>), and the remote end the program connected to or the peer its accept returned.</summary>
    public NetworkClassifyContext Classify { get; init; }

    /// <summary>The final verdict, which permitted the flow: the name of the filter whose permit decided it, or null when
    /// no filter decided (no filter at that layer matched, or none is registered there: the engine's default permit).</summary>
    public string? DecidingFilter { get; init; }

    /// <summary>The name of the driver that owns <see cref="DecidingFilter"/>, or null.</summary>
    public string? DecidingDriver { get; init; }
}

/// <summary>A flow callback: told of each flow's establishment and end.</summary>
/// <param name="flow">The notification.</param>
[ApiInfo(ApiArea.Network, "1.0", ApiState.Draft, "network monitoring")]
public delegate void NetworkFlowCallback(in NetworkFlowInfo flow);
