using System;
using System.Collections.Generic;

namespace Palisade.Api;

/// <summary>
/// The entry point of a driver. The kernel's loader verifies the driver package's signature, loads its assembly in
/// a load context of its own, creates one instance of the manifest's entry type (which must implement this
/// interface and have a public parameterless constructor) and calls <see cref="Load"/> once.
/// </summary>
/// <remarks>
/// <para><see cref="Load"/> runs on a kernel thread before any guest program starts. Everything the driver registers
/// through the context is recorded against the driver: when the driver unloads, the kernel calls
/// <see cref="Unload"/> and then removes every registration the driver left behind, so a driver that forgets to
/// unregister cannot leave a callback pointing into unloaded code.</para>
/// <para>An exception thrown from <see cref="Load"/> is contained: the load fails with
/// <see cref="Status.CallbackFaulted"/> and the kernel removes whatever the driver had registered.</para>
/// </remarks>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "every driver")]
public interface IDriver
{
    /// <summary>Called once after the driver is loaded: register callbacks here.</summary>
    /// <param name="context">The driver's view of the kernel; valid until <see cref="Unload"/> returns.</param>
    /// <returns><see cref="Status.Success"/> to stay loaded; any error status makes the kernel unload the driver
    /// (its registrations are removed) and report the status as the reason the load failed.</returns>
    Status Load(IDriverContext context);

    /// <summary>Called once before the driver is unloaded. Registrations still present afterwards are removed by the kernel.</summary>
    void Unload();
}

/// <summary>
/// The driver's view of the kernel: one object per API area, the driver's parameters and its event channel.
/// The kernel creates one context per loaded driver; every registration made through it belongs to that driver.
/// </summary>
/// <remarks>Members may be called from any thread, including from inside callbacks.</remarks>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "every driver")]
public interface IDriverContext
{
    /// <summary>The driver's name, from its manifest.</summary>
    string DriverName { get; }

    /// <summary>The API version this kernel implements, for example 1.0.</summary>
    Version ApiVersion { get; }

    /// <summary>
    /// The driver's parameters as they are now: the string values (<see cref="RegistryValueType.String"/> and
    /// <see cref="RegistryValueType.ExpandString"/>) of the registry key
    /// <c>\Registry\Machine\System\CurrentControlSet\Services\NAME\Parameters</c>, NAME being the driver's name,
    /// with the <c>--param NAME.KEY=VALUE</c> options of <c>palisade run</c> put over them. Never null; empty when none
    /// are set.
    /// </summary>
    /// <remarks>
    /// <para><b>Overrides win.</b> A name given with <c>--param</c> has that value for the whole run, whatever the
    /// registry says or later says about it; every other name follows the registry.</para>
    /// <para><b>Current values.</b> The kernel follows the registry while the driver runs (changes made with
    /// <c>palisade reg</c>, decided by the registry callbacks): after a change, this property returns the new values
    /// before the driver's <see cref="ParametersChangedCallback"/> callbacks are called. Each read returns an immutable
    /// snapshot, replaced as a whole: read it once per decision to see one consistent set.</para>
    /// </remarks>
    IReadOnlyDictionary<string, string> Parameters { get; }

    /// <summary>
    /// Registers a callback that the kernel calls after the driver's parameters (<see cref="Parameters"/>) changed,
    /// in the manner of a registry change notification on the driver's own Parameters key: a driver picks up a new
    /// option without being restarted.
    /// </summary>
    /// <param name="callback">The callback. Must not be null.</param>
    /// <param name="cookie">On success, names the registration; otherwise default.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> for a null callback;
    /// <see cref="Status.TooManyRegistrations"/> when the kernel already holds 64 such registrations;
    /// <see cref="Status.InvalidDeviceState"/> once the driver is unloading.</returns>
    /// <remarks>
    /// <para><b>When.</b> After a change of the registry that changes the driver's effective parameters: a value of
    /// its Parameters key set, changed or deleted, the key or a parent deleted or renamed, or the key created by
    /// renaming. A change that leaves the effective values as they were (the same value written again, a value that a
    /// <c>--param</c> override hides, a value of another type than a string) is not reported. The change is already
    /// in the registry; the registry's post callbacks of the operation that made it may still be running.</para>
    /// <para><b>Threading.</b> On a kernel worker thread, never the thread that made the change and never inside the
    /// driver's other callbacks. One notification at a time per driver: the driver's callbacks are never called
    /// concurrently with one another; other drivers' notifications may run at the same time. Never before
    /// <see cref="IDriver.Load"/> has returned success (a change made while Load ran is reported right after it); none
    /// starts once <see cref="IDriver.Unload"/> has begun (one already running may still be finishing).</para>
    /// <para><b>Ordering.</b> The driver's registrations are called in the order they were made. Notifications
    /// follow the order of the changes; changes close together may be reported as one, whose
    /// <see cref="ParametersChange.Previous"/> is what the driver was last shown (by the previous notification, or
    /// at load) and whose <see cref="ParametersChange.Parameters"/> are the latest.</para>
    /// <para><b>Containment.</b> As for every callback: one that throws is reported as a <c>driver-fault</c> event
    /// and counts as <see cref="Status.CallbackFaulted"/>; one that overruns its 5-second deadline is reported and its
    /// registration disabled. The kernel writes one <c>parameters</c> line to the event stream per notification,
    /// with the names that changed and the first error status the driver's callbacks returned (or Success).</para>
    /// <para>To refuse a value before it is written, register a registry callback
    /// (<see cref="IRegistryCallbacks"/>) that blocks the pre-set-value operation on the Parameters key.</para>
    /// </remarks>
    Status RegisterParametersChanged(ParametersChangedCallback callback, out CallbackCookie cookie);

    /// <summary>Removes a registration made with <see cref="RegisterParametersChanged"/>. After it returns, the callback
    /// is not running and is not called again.</summary>
    /// <remarks>Run-down, as ExWaitForRundownProtectionRelease: no call of the callback starts once the removal began, and
    /// the method returns only after every call that had started has returned. Called from inside one of its calls on the
    /// thread that runs it (a callback that removes its own registration), it waits for the calls on other threads only
    /// and does not deadlock: it returns <see cref="Status.Success"/>, and the calling callback then finishes normally
    /// (its verdict is used). Do not call it while holding a lock that the callback might take: it waits for them.</remarks>
    /// <param name="cookie">The cookie returned at registration.</param>
    /// <returns><see cref="Status.Success"/>, or <see cref="Status.InvalidHandle"/> when it names no live
    /// registration of this driver.</returns>
    Status UnregisterParametersChanged(CallbackCookie cookie);

    /// <summary>Process, thread and image-load notifications.</summary>
    IProcessCallbacks Processes { get; }

    /// <summary>Handle-operation callbacks on processes and threads.</summary>
    IObjectCallbacks Objects { get; }

    /// <summary>Registry callbacks.</summary>
    IRegistryCallbacks Registry { get; }

    /// <summary>The filter manager: file system minifilters.</summary>
    IFilterManager Files { get; }

    /// <summary>The network filter engine.</summary>
    INetworkFilterEngine Network { get; }

    /// <summary>The security center: product registration and health.</summary>
    ISecurityCenter SecurityCenter { get; }

    /// <summary>Communication ports: named Unix sockets the kernel owns, through which user-mode programs (a scanning
    /// service, a user interface) and the driver exchange messages (docs/ports.md).</summary>
    IPortManager Ports { get; }

    /// <summary>
    /// Writes an event of the driver's own to the kernel's event stream (<c>palisade run --events</c>), for example a
    /// detection. The kernel adds the time, the driver's name and the line's sequence numbers (docs/events.md).
    /// </summary>
    /// <param name="kind">A short machine-readable kind, for example <c>detection</c>; 1 to 64 characters.</param>
    /// <param name="message">A human-readable message; at most 4096 characters. Text that is not well-formed UTF-16
    /// (a lone surrogate) is written with U+FFFD in its place.</param>
    /// <param name="processId">The process the event is about, or 0.</param>
    /// <param name="path">The file the event is about, or null.</param>
    /// <returns><see cref="Status.Success"/> when the event is queued for the stream (or no stream is attached);
    /// <see cref="Status.InsufficientResources"/> when the driver's event channel is full and the event was dropped
    /// (the stream reports the loss in a <c>gap</c> line: do not retry in a loop); <see cref="Status.InvalidParameter"/>
    /// when an argument is out of range; <see cref="Status.InvalidDeviceState"/> once the driver is unloaded.</returns>
    /// <remarks>
    /// Never waits for the stream's reader, under either <c>--events-policy</c>: the event is copied into the
    /// driver's own bounded channel (1 MiB) and written by the kernel's writer thread. Callable from any thread,
    /// including from inside callbacks; events of one driver appear in the order they were reported.
    /// </remarks>
    Status ReportEvent(string kind, string message, int processId, string? path);

    /// <summary>
    /// Sets a registration's policy for time and faults: how long it may hold an operation, its verdict on timeout and
    /// fault, and after how many faults in a row the kernel disables it (see <see cref="CallbackOptions"/>). Applies to
    /// operations that reach the registration after this call returns.
    /// </summary>
    /// <param name="registration">A cookie returned by one of this driver's callback registrations (process, thread,
    /// image-load, object and registry callbacks, minifilters, callouts).</param>
    /// <param name="options">The policy. Must not be null.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidHandle"/> when the cookie names no live callback
    /// registration of this driver (network sublayers and filters and security-center products have no callbacks);
    /// <see cref="Status.InvalidParameter"/> when <paramref name="options"/> is null,
    /// <see cref="CallbackOptions.MaximumHoldTime"/> is negative, above <see cref="CallbackOptions.MaximumHoldTimeLimit"/>, or
    /// more than zero for a registration whose callbacks cannot pend (notifications, registry callbacks),
    /// <see cref="CallbackOptions.TimeoutVerdict"/> is undefined, or <see cref="CallbackOptions.DisableAfterFaults"/> is
    /// outside 0–<see cref="CallbackOptions.DisableAfterFaultsLimit"/>; <see cref="Status.InvalidDeviceState"/> after the
    /// driver unloaded.</returns>
    Status SetCallbackOptions(CallbackCookie registration, CallbackOptions options);

    /// <summary>
    /// Enables a registration again after the kernel disabled it for faults (<see cref="CallbackOptions.DisableAfterFaults"/>)
    /// or the driver disabled it (<see cref="DisableRegistration"/>), and resets its count of faults in a row. Its
    /// callbacks are called again for operations that reach it after this call returns.
    /// </summary>
    /// <param name="registration">A callback registration of this driver.</param>
    /// <returns><see cref="Status.Success"/> (also when it was enabled); <see cref="Status.InvalidHandle"/> when the cookie
    /// names no live callback registration of this driver; <see cref="Status.InvalidDeviceState"/> after the driver unloaded.</returns>
    Status EnableRegistration(CallbackCookie registration);

    /// <summary>
    /// Disables a registration without removing it: its callbacks are skipped, as if it were not registered, until
    /// <see cref="EnableRegistration"/>. Operations it already holds stay held until they complete, time out or are cancelled.
    /// </summary>
    /// <param name="registration">A callback registration of this driver.</param>
    /// <returns><see cref="Status.Success"/> (also when it was disabled); <see cref="Status.InvalidHandle"/>;
    /// <see cref="Status.InvalidDeviceState"/> after the driver unloaded.</returns>
    Status DisableRegistration(CallbackCookie registration);

    /// <summary>
    /// Subscribes to the faults of this driver's registrations: each fault (a callback that threw, overran its deadline or
    /// returned an unusable verdict) is reported to <paramref name="callback"/> with what the kernel did about it. Called on
    /// one of the driver's worker threads, in the order the faults happened; a fault callback that throws is reported as a
    /// <c>driver-fault</c> event and not called for its own fault.
    /// </summary>
    /// <param name="callback">The callback. Must not be null.</param>
    /// <param name="cookie">On success, names the subscription for <see cref="UnregisterFaultCallback"/>.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> for a null callback;
    /// <see cref="Status.TooManyRegistrations"/> at 8 subscriptions of this driver; <see cref="Status.InvalidDeviceState"/>
    /// after the driver unloaded.</returns>
    Status RegisterFaultCallback(RegistrationFaultCallback callback, out CallbackCookie cookie);

    /// <summary>Ends a subscription made with <see cref="RegisterFaultCallback"/>. After it returns, the callback is not
    /// running and is not called again, not even for a fault found before (whose report was still queued).</summary>
    /// <remarks>Run-down, as ExWaitForRundownProtectionRelease: no call of the callback starts once the removal began, and
    /// the method returns only after every call that had started has returned. Called from inside one of its calls on the
    /// thread that runs it (a callback that removes its own registration), it waits for the calls on other threads only
    /// and does not deadlock: it returns <see cref="Status.Success"/>, and the calling callback then finishes normally
    /// (its verdict is used). Do not call it while holding a lock that the callback might take: it waits for them.</remarks>
    /// <param name="cookie">The subscription's cookie.</param>
    /// <returns><see cref="Status.Success"/>, or <see cref="Status.InvalidHandle"/> when it names no subscription of this driver.</returns>
    Status UnregisterFaultCallback(CallbackCookie cookie);

    /// <summary>
    /// Queues work to run on one of the driver's worker threads (IoQueueWorkItem): a scan of a held file, the completion
    /// of a held operation, anything that must not run on a guest's thread. A driver has no threads or timers of its own
    /// (the driver verifier refuses them); its work items, cancel notifications and fault notifications run here.
    /// </summary>
    /// <remarks>
    /// Items start in the order they were queued; up to 4 of one driver run at once, each on its own thread. An item that
    /// throws is reported as a <c>driver-fault</c> event and the next one runs. An item has no deadline, but one that never
    /// returns keeps one of the driver's 4 workers. Items still queued when the driver unloads are dropped.
    /// </remarks>
    /// <param name="callback">The work. Must not be null.</param>
    /// <param name="state">Passed to <paramref name="callback"/>.</param>
    /// <returns><see cref="Status.Success"/> once queued; <see cref="Status.InvalidParameter"/> for a null callback;
    /// <see cref="Status.InsufficientResources"/> when 4096 items of this driver are waiting;
    /// <see cref="Status.InvalidDeviceState"/> after the driver unloaded.</returns>
    Status QueueWorkItem(WorkItemCallback callback, object? state);
}

/// <summary>
/// Names one registration so that it can be removed. Returned by every registration method of the API; the value
/// is opaque and unique for the life of the kernel.
/// </summary>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "every driver")]
public readonly struct CallbackCookie : IEquatable<CallbackCookie>
{
    /// <summary>Wraps a cookie value. Drivers receive cookies from the kernel; they have no reason to make one.</summary>
    /// <param name="value">The opaque value.</param>
    public CallbackCookie(long value) => Value = value;

    /// <summary>The opaque value; 0 never names a registration.</summary>
    public long Value { get; }

    /// <summary>Compares values.</summary>
    /// <param name="other">The other cookie.</param>
    /// <returns>True when both name the same registration.</returns>
    public bool Equals(CallbackCookie other) => Value == other.Value;

    /// <summary>Compares with a boxed cookie.</summary>
    /// <param name="obj">The object to compare with.</param>
    /// <returns>True when <paramref name="obj"/> is a cookie with the same value.</returns>
    public override bool Equals(object? obj) => obj is CallbackCookie c && Equals(c);

    /// <summary>The hash of the value.</summary>
    /// <returns>A hash code.</returns>
    public override int GetHashCode() => Value.GetHashCode();

    /// <summary>Compares values.</summary>
    /// <param name="left">The first cookie.</param>
    /// <param name="right">The second cookie.</param>
    /// <returns>True when equal.</returns>
    public static bool operator ==(CallbackCookie left, CallbackCookie right) => left.Value == right.Value;

    /// <summary>Compares values.</summary>
    /// <param name="left">The first cookie.</param>
    /// <param name="right">The second cookie.</param>
    /// <returns>True when different.</returns>
    public static bool operator !=(CallbackCookie left, CallbackCookie right) => left.Value != right.Value;
}

/// <summary>The identity of a file on the host: its device and inode numbers, stable across renames and hard links.</summary>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "antivirus verdict cache", "application control")]
public readonly struct FileIdentity : IEquatable<FileIdentity>
{
    /// <summary>Makes an identity.</summary>
    /// <param name="device">The device number (st_dev).</param>
    /// <param name="inode">The inode number (st_ino).</param>
    public FileIdentity(ulong device, ulong inode)
    {
        Device = device;
        Inode = inode;
    }

    /// <summary>The device number (st_dev).</summary>
    public ulong Device { get; }

    /// <summary>The inode number (st_ino).</summary>
    public ulong Inode { get; }

    /// <summary>True when this identity names no file (both numbers zero), for example before a file exists.</summary>
    public bool IsNone => Device == 0 && Inode == 0;

    /// <summary>Compares identities.</summary>
    /// <param name="other">The other identity.</param>
    /// <returns>True when both name the same file.</returns>
    public bool Equals(FileIdentity other) => Device == other.Device && Inode == other.Inode;

    /// <summary>Compares with a boxed identity.</summary>
    /// <param name="obj">The object to compare with.</param>
    /// <returns>True when equal.</returns>
    public override bool Equals(object? obj) => obj is FileIdentity f && Equals(f);

    /// <summary>A hash of both numbers.</summary>
    /// <returns>A hash code.</returns>
    public override int GetHashCode() => HashCode.Combine(Device, Inode);

    /// <summary>The identity as <c>device:inode</c>.</summary>
    /// <returns>A display string.</returns>
    public override string ToString() => FormattableString.Invariant($"{Device}:{Inode}");

    /// <summary>Compares identities.</summary>
    /// <param name="left">The first identity.</param>
    /// <param name="right">The second identity.</param>
    /// <returns>True when equal.</returns>
    public static bool operator ==(FileIdentity left, FileIdentity right) => left.Equals(right);

    /// <summary>Compares identities.</summary>
    /// <param name="left">The first identity.</param>
    /// <param name="right">The second identity.</param>
    /// <returns>True when different.</returns>
    public static bool operator !=(FileIdentity left, FileIdentity right) => !left.Equals(right);
}

/// <summary>
/// What a file's content and metadata were when the kernel looked at it: its size and its modification, change and birth
/// times in nanoseconds, as statx(2) reports them for the open file. Every way of changing a file moves its change time
/// (ctime): a write through any descriptor (O_APPEND included), a truncate, a change of mode, owner or links, an
/// fallocate; a write from outside Palisade too. Two stamps of one <see cref="FileIdentity"/> that are equal therefore say
/// that the file was not changed in between, except in the cases <see cref="IFilterManager.GetFileVerdict"/> lists.
/// </summary>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "antivirus verdict cache", "application control")]
public readonly struct FileChangeStamp : IEquatable<FileChangeStamp>
{
    /// <summary>Makes a stamp. The kernel makes them (<see cref="FileOperation.ChangeStamp"/>); drivers compare them.</summary>
    /// <param name="size">The size in bytes (stx_size).</param>
    /// <param name="modificationTime">The modification time (stx_mtime) in nanoseconds since the epoch.</param>
    /// <param name="changeTime">The change time (stx_ctime) in nanoseconds since the epoch; 0 makes a stamp that is none.</param>
    /// <param name="birthTime">The birth time (stx_btime) in nanoseconds since the epoch, 0 when the file system does not
    /// record it; it tells a new file that reused a deleted file's inode number from the old one.</param>
    public FileChangeStamp(long size, long modificationTime, long changeTime, long birthTime)
    {
        Size = size;
        ModificationTime = modificationTime;
        ChangeTime = changeTime;
        BirthTime = birthTime;
    }

    /// <summary>The size in bytes.</summary>
    public long Size { get; }

    /// <summary>The modification time in nanoseconds since the epoch.</summary>
    public long ModificationTime { get; }

    /// <summary>The change time in nanoseconds since the epoch.</summary>
    public long ChangeTime { get; }

    /// <summary>The birth time in nanoseconds since the epoch; 0 when unknown.</summary>
    public long BirthTime { get; }

    /// <summary>True when there is no stamp (the kernel could not take one, or would not trust it): nothing cached under
    /// it can be proved current.</summary>
    public bool IsNone => ChangeTime == 0;

    /// <summary>Compares stamps.</summary>
    /// <param name="other">The other stamp.</param>
    /// <returns>True when every field is equal.</returns>
    public bool Equals(FileChangeStamp other) =>
        Size == other.Size && ModificationTime == other.ModificationTime && ChangeTime == other.ChangeTime && BirthTime == other.BirthTime;

    /// <summary>Compares with a boxed stamp.</summary>
    /// <param name="obj">The object to compare with.</param>
    /// <returns>True when equal.</returns>
    public override bool Equals(object? obj) => obj is FileChangeStamp f && Equals(f);

    /// <summary>A hash of the fields.</summary>
    /// <returns>A hash code.</returns>
    public override int GetHashCode() => HashCode.Combine(Size, ModificationTime, ChangeTime, BirthTime);

    /// <summary>The stamp as <c>size/mtime/ctime/btime</c>.</summary>
    /// <returns>A display string.</returns>
    public override string ToString() => FormattableString.Invariant($"{Size}/{ModificationTime}/{ChangeTime}/{BirthTime}");

    /// <summary>Compares stamps.</summary>
    /// <param name="left">The first stamp.</param>
    /// <param name="right">The second stamp.</param>
    /// <returns>True when equal.</returns>
    public static bool operator ==(FileChangeStamp left, FileChangeStamp right) => left.Equals(right);

    /// <summary>Compares stamps.</summary>
    /// <param name="left">The first stamp.</param>
    /// <param name="right">The second stamp.</param>
    /// <returns>True when different.</returns>
    public static bool operator !=(FileChangeStamp left, FileChangeStamp right) => !left.Equals(right);
}

/// <summary>What a <see cref="ParametersChangedCallback"/> is told: the driver's parameters now, before, and which
/// names changed.</summary>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "reconfiguration without restart")]
public readonly struct ParametersChange
{
    /// <summary>Describes a change. Drivers receive changes from the kernel; they have no reason to make one.</summary>
    /// <param name="parameters">The parameters now.</param>
    /// <param name="previous">The parameters the driver was last shown.</param>
    /// <param name="changedNames">The names added, changed or removed, sorted.</param>
    public ParametersChange(IReadOnlyDictionary<string, string> parameters, IReadOnlyDictionary<string, string> previous, IReadOnlyList<string> changedNames)
    {
        Parameters = parameters;
        Previous = previous;
        ChangedNames = changedNames;
    }

    /// <summary>The parameters now: the same snapshot <see cref="IDriverContext.Parameters"/> returns when the
    /// callback is called (overrides included).</summary>
    public IReadOnlyDictionary<string, string> Parameters { get; }

    /// <summary>The parameters the driver was last shown: by the previous notification, or at load.</summary>
    public IReadOnlyDictionary<string, string> Previous { get; }

    /// <summary>The names whose value was added, changed or removed between <see cref="Previous"/> and
    /// <see cref="Parameters"/>, in ordinal order; never empty.</summary>
    public IReadOnlyList<string> ChangedNames { get; }
}

/// <summary>Called after the driver's parameters changed (see
/// <see cref="IDriverContext.RegisterParametersChanged"/> for when, on which thread and in which order).</summary>
/// <param name="change">The parameters now and before, and the names that changed.</param>
/// <returns><see cref="Status.Success"/> when the driver applied the new values; an error status when it could not
/// (for example a value it cannot parse). The status is reported in the event stream's <c>parameters</c> line and
/// changes nothing else: the registry keeps the new values, <see cref="IDriverContext.Parameters"/> returns them, and
/// the driver keeps whatever configuration it chose to keep.</returns>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "reconfiguration without restart")]
public delegate Status ParametersChangedCallback(in ParametersChange change);
