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
    /// The driver's parameters: the string values of the registry key
    /// <c>\Registry\Machine\System\CurrentControlSet\Services\NAME\Parameters</c>, overridden by
    /// <c>--param NAME.KEY=VALUE</c> options of <c>palisade run</c>. Never null; empty when none are set.
    /// </summary>
    IReadOnlyDictionary<string, string> Parameters { get; }

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

    /// <summary>
    /// Writes an event of the driver's own to the kernel's event stream (<c>palisade run --events</c>), for example a
    /// detection. The kernel adds the time and the driver's name.
    /// </summary>
    /// <param name="kind">A short machine-readable kind, for example <c>detection</c>; 1 to 64 characters.</param>
    /// <param name="message">A human-readable message; at most 4096 characters.</param>
    /// <param name="processId">The process the event is about, or 0.</param>
    /// <param name="path">The file the event is about, or null.</param>
    /// <returns><see cref="Status.Success"/>, or <see cref="Status.InvalidParameter"/> when an argument is out of range.</returns>
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

    /// <summary>Ends a subscription made with <see cref="RegisterFaultCallback"/>; faults found after it returns are not reported to it.</summary>
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
