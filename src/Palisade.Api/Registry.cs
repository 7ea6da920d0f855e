using System;
using System.Collections.Generic;

namespace Palisade.Api;

/// <summary>
/// Registry callbacks, in the manner of CmRegisterCallbackEx: one callback per registration sees every registry
/// operation before (pre) and after (post) it happens, and may block it, let it pass, or perform it itself.
/// </summary>
/// <remarks>
/// <para>Keys are named by absolute paths such as <c>\Registry\Machine\Software\Vendor</c>; names compare without
/// regard to case.</para>
/// <para><b>Verdicts.</b> A pre callback returns <see cref="Status.Success"/> to let the operation continue to the
/// next callback and then to the registry; an error status to block it (the caller gets that status, a guest gets
/// the mapped errno, <c>EACCES</c> for <see cref="Status.AccessDenied"/>); or <see cref="Status.CallbackBypass"/>
/// when it performed the operation itself: the kernel then skips the registry and the remaining pre callbacks,
/// returns success to the caller, and for a query returns <see cref="RegistryNotification.BypassType"/> and
/// <see cref="RegistryNotification.BypassData"/> (for an enumeration <see cref="RegistryNotification.BypassNames"/>).
/// Post callbacks see the outcome in <see cref="RegistryNotification.OperationStatus"/>; their return value is ignored.</para>
/// <para><b>Ordering.</b> Pre notifications go from the highest altitude down, post notifications from the lowest
/// up. Only callbacks whose pre notification ran get the post notification.</para>
/// <para><b>Limits.</b> At most 64 registrations at once; altitudes are unique among registry registrations.</para>
/// <para><b>Containment.</b> A callback that throws or overruns its 5-second deadline faults: the registration's timeout
/// verdict applies (<see cref="TimeoutVerdict.Allow"/>: <see cref="Status.Success"/>, continue;
/// <see cref="TimeoutVerdict.Deny"/>: <see cref="Status.AccessDenied"/>), a <c>driver-fault</c> event names the driver, the
/// registration and the operation, and the driver's fault callbacks are told; the registration is disabled only as its
/// <see cref="CallbackOptions.DisableAfterFaults"/> says. Registry operations cannot be held: they are the administrator's
/// and the kernel's own, not a guest's, and no guest thread waits for them; a callback that needs time defers its own work
/// to a work item (<see cref="IDriverContext.QueueWorkItem"/>).</para>
/// </remarks>
[ApiInfo(ApiArea.Registry, "1.0", ApiState.Draft, "self-protection of configuration", "configuration monitoring", "virtualization")]
public interface IRegistryCallbacks
{
    /// <summary>Registers a registry callback at an altitude.</summary>
    /// <param name="callback">The callback. Must not be null.</param>
    /// <param name="altitude">A decimal altitude such as <c>"320000"</c>, unique among registry registrations.</param>
    /// <param name="cookie">On success, names the registration; otherwise default.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidParameter"/> (null callback),
    /// <see cref="Status.InvalidAltitude"/>, <see cref="Status.AltitudeCollision"/> or <see cref="Status.TooManyRegistrations"/>.</returns>
    Status Register(RegistryCallback callback, string altitude, out CallbackCookie cookie);

    /// <summary>Removes a registration. After it returns, the callback is not running and is not called again.</summary>
    /// <remarks>Run-down, as ExWaitForRundownProtectionRelease: no call of the callback starts once the removal began, and
    /// the method returns only after every call that had started has returned. Called from inside one of its calls on the
    /// thread that runs it (a callback that removes its own registration), it waits for the calls on other threads only
    /// and does not deadlock: it returns <see cref="Status.Success"/>, and the calling callback then finishes normally
    /// (its verdict is used). An operation whose pre notification reached it before the removal gets no post notification from it. Do not call it while holding a lock that the callback might take: it waits for them.</remarks>
    /// <param name="cookie">The cookie returned at registration.</param>
    /// <returns><see cref="Status.Success"/>, or <see cref="Status.InvalidHandle"/> when it names no live registration of this driver.</returns>
    Status Unregister(CallbackCookie cookie);
}

/// <summary>Which operation a registry notification is about, and whether before (Pre) or after (Post) it.</summary>
[ApiInfo(ApiArea.Registry, "1.0", ApiState.Draft, "self-protection of configuration")]
public enum RegistryNotifyClass
{
    /// <summary>Before a key is created (or opened by a create call).</summary>
    PreCreateKey,
    /// <summary>After a key is created.</summary>
    PostCreateKey,
    /// <summary>Before a key is opened.</summary>
    PreOpenKey,
    /// <summary>After a key is opened.</summary>
    PostOpenKey,
    /// <summary>Before a key is deleted.</summary>
    PreDeleteKey,
    /// <summary>After a key is deleted.</summary>
    PostDeleteKey,
    /// <summary>Before a value is set.</summary>
    PreSetValue,
    /// <summary>After a value is set.</summary>
    PostSetValue,
    /// <summary>Before a value is deleted.</summary>
    PreDeleteValue,
    /// <summary>After a value is deleted.</summary>
    PostDeleteValue,
    /// <summary>Before a value is read.</summary>
    PreQueryValue,
    /// <summary>After a value is read.</summary>
    PostQueryValue,
    /// <summary>Before a key is renamed.</summary>
    PreRenameKey,
    /// <summary>After a key is renamed.</summary>
    PostRenameKey,
    /// <summary>Before the subkeys of a key are listed.</summary>
    PreEnumerateKey,
    /// <summary>After the subkeys of a key are listed.</summary>
    PostEnumerateKey,
    /// <summary>Before the values of a key are listed.</summary>
    PreEnumerateValue,
    /// <summary>After the values of a key are listed.</summary>
    PostEnumerateValue,
}

/// <summary>Registry value types, with the Windows numbers.</summary>
[ApiInfo(ApiArea.Registry, "1.0", ApiState.Draft, "configuration monitoring")]
public enum RegistryValueType
{
    /// <summary>REG_NONE: no type.</summary>
    None = 0,
    /// <summary>REG_SZ: a UTF-16 string.</summary>
    String = 1,
    /// <summary>REG_EXPAND_SZ: a string with environment references.</summary>
    ExpandString = 2,
    /// <summary>REG_BINARY: bytes.</summary>
    Binary = 3,
    /// <summary>REG_DWORD: a 32-bit little-endian number.</summary>
    DWord = 4,
    /// <summary>REG_MULTI_SZ: a list of strings.</summary>
    MultiString = 7,
    /// <summary>REG_QWORD: a 64-bit little-endian number.</summary>
    QWord = 11,
}

/// <summary>What a registry callback sees, and where a bypassing callback puts its result.</summary>
[ApiInfo(ApiArea.Registry, "1.0", ApiState.Draft, "self-protection of configuration", "virtualization")]
public struct RegistryNotification
{
    /// <summary>The operation and phase.</summary>
    public RegistryNotifyClass NotifyClass { get; init; }

    /// <summary>The process that asked for the operation (0 for the kernel or the administrator's <c>palisade reg</c>).</summary>
    public int ProcessId { get; init; }

    /// <summary>The absolute path of the key operated on.</summary>
    public string KeyPath { get; init; }

    /// <summary>The value name for value operations (empty for the default value), otherwise null.</summary>
    public string? ValueName { get; init; }

    /// <summary>For a rename, the new name of the key (a single name, not a path); otherwise null.</summary>
    public string? NewName { get; init; }

    /// <summary>For a set, the type of the data being written; for a post query, the type read.</summary>
    public RegistryValueType ValueType { get; init; }

    /// <summary>For a set, the data being written; for a post query, the data read. Empty otherwise.</summary>
    public ReadOnlyMemory<byte> Data { get; init; }

    /// <summary>In a post notification, the outcome of the operation; <see cref="Status.Success"/> in a pre notification.</summary>
    public Status OperationStatus { get; init; }

    /// <summary>For a pre query that returns <see cref="Status.CallbackBypass"/>: the type to return.</summary>
    public RegistryValueType BypassType { get; set; }

    /// <summary>For a pre query that returns <see cref="Status.CallbackBypass"/>: the data to return.</summary>
    public ReadOnlyMemory<byte> BypassData { get; set; }

    /// <summary>For a pre enumeration that returns <see cref="Status.CallbackBypass"/>: the names to return (null means none).</summary>
    public IReadOnlyList<string>? BypassNames { get; set; }
}

/// <summary>A registry callback.</summary>
/// <param name="notification">The callback's own copy of the operation; in a pre notification, a bypass result may be
/// written to it. Nothing else is read back: callbacks below, and the registry, see the operation the requester asked for.</param>
/// <returns>In a pre notification: <see cref="Status.Success"/> to continue, an error to block,
/// <see cref="Status.CallbackBypass"/> when the callback performed the operation. Ignored in a post notification.</returns>
[ApiInfo(ApiArea.Registry, "1.0", ApiState.Draft, "self-protection of configuration")]
public delegate Status RegistryCallback(ref RegistryNotification notification);
