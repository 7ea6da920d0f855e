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
/// errno of a Linux host firewall rejecting at the socket layer); a blocked accept drops the incoming connection
/// and the guest's accept fails with <c>ECONNABORTED</c>.</para>
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

    /// <summary>For application conditions, the path.</summary>
    public string? Path { get; private init; }

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
    /// The local address. At bind, the address asked for. At connect, send and listen, the socket's address when the
    /// call is made (its <c>getsockname</c>): for a socket not bound yet, the unspecified address (<c>0.0.0.0</c> or
    /// <c>::</c>) with <see cref="LocalPort"/> 0, since Linux chooses them while it performs the connect, after the
    /// decision. Null only when the host could not read the socket's address.
    /// </summary>
    public IPAddress? LocalAddress { get; init; }

    /// <summary>The local port: the port asked for at bind, the socket's port otherwise; 0 for a socket not bound yet.</summary>
    public int LocalPort { get; init; }

    /// <summary>The remote address, or null (bind, listen).</summary>
    public IPAddress? RemoteAddress { get; init; }

    /// <summary>The remote port, or 0.</summary>
    public int RemotePort { get; init; }

    /// <summary>The process.</summary>
    public int ProcessId { get; init; }

    /// <summary>The absolute path of the process's program.</summary>
    public string ApplicationPath { get; init; }

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
