using System;
using System.Globalization;

namespace Palisade.Api;

/// <summary>
/// The result of every API call and of every callback verdict: a 32-bit status code with a name and a message,
/// in the style of an NTSTATUS. Statuses cross the API boundary; exceptions never do.
/// </summary>
/// <remarks>
/// <para>The high two bits give the severity: <c>0</c> success, <c>1</c> informational, <c>3</c> error. Codes taken
/// from Windows keep their Windows values; codes that Windows has no counterpart for use the customer range
/// (<c>0xE000xxxx</c>). <see cref="IsSuccess"/> is true for success and informational codes.</para>
/// <para>When a status decides a guest system call (a deny), the kernel maps it to the errno the guest sees;
/// the mapping is listed with each code ("Errno: …"). Success codes never reach a guest as an errno; an error code
/// without a listed errno (one a driver made up with the constructor) maps to <c>EPERM</c>.</para>
/// </remarks>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "every driver")]
public readonly struct Status : IEquatable<Status>
{
    /// <summary>Creates a status from its numeric code. Any code is accepted; unknown codes have a generic name.</summary>
    /// <param name="code">The 32-bit status code.</param>
    public Status(uint code) => Code = code;

    /// <summary>The 32-bit numeric code.</summary>
    public uint Code { get; }

    /// <summary>True for success and informational codes (severity bits <c>00</c> or <c>01</c>).</summary>
    public bool IsSuccess => Code >> 30 < 2;

    /// <summary>True for error codes (severity bits <c>11</c> or <c>10</c>).</summary>
    public bool IsError => !IsSuccess;

    /// <summary>The operation succeeded. For a verdict: allow, continue.</summary>
    public static Status Success => new(0x0000_0000);

    /// <summary>A pre callback holds the operation to decide it later (STATUS_PENDING): returned by a process-create
    /// callback that called <see cref="IProcessCallbacks.PendCreate"/> first. A success code; it never reaches a guest.</summary>
    public static Status Pending => new(0x0000_0103);

    /// <summary>Registry pre callbacks only: the callback performed the operation itself and supplied its result; the
    /// kernel skips the operation and the remaining pre callbacks, and the caller sees success (STATUS_CALLBACK_BYPASS,
    /// an error-severity code as in Windows, so <see cref="IsSuccess"/> is false). Returned by any other callback it is
    /// an error like any other: it denies the operation. Errno: <c>EPERM</c> (when it denies a guest's call).</summary>
    public static Status CallbackBypass => new(0xC000_0503);

    /// <summary>The operation failed for an unspecified reason. Errno: <c>EPERM</c>.</summary>
    public static Status Unsuccessful => new(0xC000_0001);

    /// <summary>A handle or cookie does not name a live object or registration. Errno: <c>EBADF</c>.</summary>
    public static Status InvalidHandle => new(0xC000_0008);

    /// <summary>An argument is null, out of range or malformed. Errno: <c>EINVAL</c>.</summary>
    public static Status InvalidParameter => new(0xC000_000D);

    /// <summary>The caller may not perform the operation; the usual verdict of a deny. Errno: <c>EACCES</c>.</summary>
    public static Status AccessDenied => new(0xC000_0022);

    /// <summary>A buffer supplied by the caller is too small for the result. Errno: <c>ERANGE</c>.</summary>
    public static Status BufferTooSmall => new(0xC000_0023);

    /// <summary>A name or path is syntactically invalid or too long. Errno: <c>EINVAL</c>.</summary>
    public static Status ObjectNameInvalid => new(0xC000_0033);

    /// <summary>The named object does not exist. Errno: <c>ENOENT</c>.</summary>
    public static Status ObjectNameNotFound => new(0xC000_0034);

    /// <summary>An object of that name already exists. Errno: <c>EEXIST</c>.</summary>
    public static Status ObjectNameCollision => new(0xC000_0035);

    /// <summary>A component of the path does not exist. Errno: <c>ENOENT</c>.</summary>
    public static Status ObjectPathNotFound => new(0xC000_003A);

    /// <summary>The file is held by another user; for a registry hive, another process has the hive open for writing
    /// (each hive has a single writer). Errno: <c>EBUSY</c>.</summary>
    public static Status SharingViolation => new(0xC000_0043);

    /// <summary>A registry hive file is damaged beyond the torn last record that the kernel discards on its own
    /// (bad header, or a record that does not apply to the tree). The hive is not opened. Errno: <c>EIO</c>.</summary>
    public static Status RegistryCorrupt => new(0xC000_014C);

    /// <summary>Writing a registry hive to disk failed (for example the disk is full); the operation is not applied and
    /// the hive keeps its previous content. Errno: <c>EIO</c>.</summary>
    public static Status RegistryIoFailed => new(0xC000_014D);

    /// <summary>The driver needs a newer API version than this kernel provides. Errno: <c>EPERM</c>.</summary>
    public static Status RevisionMismatch => new(0xC000_0059);

    /// <summary>The kernel could not allocate what the operation needs. Errno: <c>ENOMEM</c>.</summary>
    public static Status InsufficientResources => new(0xC000_009A);

    /// <summary>A callback did not return within its deadline, or a held operation's deadline passed before its completion;
    /// the kernel applied the registration's timeout verdict (STATUS_IO_TIMEOUT: an error, unlike Windows'
    /// STATUS_TIMEOUT, <c>0x00000102</c>, which is a success code of the wait functions and has no counterpart here).
    /// Errno: <c>ETIMEDOUT</c>.</summary>
    public static Status IoTimeout => new(0xC000_00B5);

    /// <summary>The operation is not supported by this object or in this context. Errno: <c>EOPNOTSUPP</c>.</summary>
    public static Status NotSupported => new(0xC000_00BB);

    /// <summary>The network filter engine blocked the operation. Errno: <c>EACCES</c> for connect, bind, listen and
    /// sendto/sendmsg; <c>ECONNABORTED</c> for accept.</summary>
    public static Status NetworkAccessDenied => new(0xC000_00CA);

    /// <summary>The operation was cancelled (for example an open cancelled by a post callback, or a held operation whose
    /// guest went away). Errno: <c>EACCES</c>.</summary>
    public static Status Cancelled => new(0xC000_0120);

    /// <summary>The object cannot be deleted. Errno: <c>EPERM</c>.</summary>
    public static Status CannotDelete => new(0xC000_0121);

    /// <summary>A registry key that has subkeys cannot be deleted. Errno: <c>ENOTEMPTY</c>.</summary>
    public static Status KeyHasChildren => new(0xC000_0180);

    /// <summary>A requested item (registration, value, context) was not found. Errno: <c>ENOENT</c>.</summary>
    public static Status NotFound => new(0xC000_0225);

    /// <summary>The remote end refused the connection. Errno: <c>ECONNREFUSED</c>.</summary>
    public static Status ConnectionRefused => new(0xC000_0236);

    /// <summary>The driver package's signature is missing, malformed or does not match its content. Errno: <c>EPERM</c>.</summary>
    public static Status InvalidSignature => new(0xC000_A000);

    /// <summary>The altitude is already taken by another registration of the same kind (STATUS_FLT_INSTANCE_ALTITUDE_COLLISION). Errno: <c>EPERM</c>.</summary>
    public static Status AltitudeCollision => new(0xC01C_0011);

    /// <summary>The limit of registrations of this kind (documented with each registration method) is reached. Errno: <c>EPERM</c>.</summary>
    public static Status TooManyRegistrations => new(0xE000_0001);

    /// <summary>An altitude is not a positive decimal number of at most 12 digits with an optional fraction. Errno: <c>EPERM</c>.</summary>
    public static Status InvalidAltitude => new(0xE000_0002);

    /// <summary>A driver callback threw an exception; the kernel applied the default verdict. Errno: <c>EPERM</c>.</summary>
    public static Status CallbackFaulted => new(0xE000_0003);

    /// <summary>The driver package is signed by a key that is not in the kernel's trust store. Errno: <c>EPERM</c>.</summary>
    public static Status UntrustedSigner => new(0xE000_0004);

    /// <summary>A held operation was already completed by an earlier call; the later completion changed nothing. Errno: <c>EPERM</c>.</summary>
    public static Status AlreadyCompleted => new(0xE000_0005);

    /// <summary>
    /// A name does not name the file the caller decided on: it was replaced by another file, or reaches a file only through a
    /// symbolic link (an own-I/O rename or delete given an expected <see cref="FileIdentity"/>). Nothing was changed.
    /// Errno: <c>EPERM</c>.
    /// </summary>
    public static Status FileIdentityMismatch => new(0xE000_0006);

    /// <summary>The driver references a kernel assembly other than Palisade.Api, or its entry type is unusable
    /// (STATUS_DRIVER_BLOCKED). Errno: <c>EPERM</c>.</summary>
    public static Status DriverBlocked => new(0xC000_036C);

    /// <summary>The object is not in a state that allows the operation (for example a registration already removed). Errno: <c>EINVAL</c>.</summary>
    public static Status InvalidDeviceState => new(0xC000_0184);

    /// <summary>The well-known name of the code (for example <c>AccessDenied</c>), or <c>0x…</c> for an unknown code.</summary>
    public string Name => Code switch
    {
        0x0000_0000 => nameof(Success),
        0x0000_0103 => nameof(Pending),
        0xC000_0503 => nameof(CallbackBypass),
        0xC000_0001 => nameof(Unsuccessful),
        0xC000_0008 => nameof(InvalidHandle),
        0xC000_000D => nameof(InvalidParameter),
        0xC000_0022 => nameof(AccessDenied),
        0xC000_0023 => nameof(BufferTooSmall),
        0xC000_0033 => nameof(ObjectNameInvalid),
        0xC000_0034 => nameof(ObjectNameNotFound),
        0xC000_0035 => nameof(ObjectNameCollision),
        0xC000_003A => nameof(ObjectPathNotFound),
        0xC000_0043 => nameof(SharingViolation),
        0xC000_0059 => nameof(RevisionMismatch),
        0xC000_009A => nameof(InsufficientResources),
        0xC000_00B5 => nameof(IoTimeout),
        0xC000_00BB => nameof(NotSupported),
        0xC000_00CA => nameof(NetworkAccessDenied),
        0xC000_0120 => nameof(Cancelled),
        0xC000_0121 => nameof(CannotDelete),
        0xC000_014C => nameof(RegistryCorrupt),
        0xC000_014D => nameof(RegistryIoFailed),
        0xC000_0180 => nameof(KeyHasChildren),
        0xC000_0184 => nameof(InvalidDeviceState),
        0xC000_0225 => nameof(NotFound),
        0xC000_0236 => nameof(ConnectionRefused),
        0xC000_036C => nameof(DriverBlocked),
        0xC000_A000 => nameof(InvalidSignature),
        0xC01C_0011 => nameof(AltitudeCollision),
        0xE000_0001 => nameof(TooManyRegistrations),
        0xE000_0002 => nameof(InvalidAltitude),
        0xE000_0003 => nameof(CallbackFaulted),
        0xE000_0004 => nameof(UntrustedSigner),
        0xE000_0005 => nameof(AlreadyCompleted),
        0xE000_0006 => nameof(FileIdentityMismatch),
        _ => "0x" + Code.ToString("X8", CultureInfo.InvariantCulture),
    };

    /// <summary>A one-line English description of the code.</summary>
    public string Message => Code switch
    {
        0x0000_0000 => "The operation completed successfully.",
        0x0000_0103 => "The operation is held and will be decided later.",
        0xC000_0503 => "A registry callback handled the operation itself.",
        0xC000_0001 => "The operation was unsuccessful.",
        0xC000_0008 => "The handle or cookie does not name a live object or registration.",
        0xC000_000D => "An invalid parameter was passed.",
        0xC000_0022 => "Access is denied.",
        0xC000_0023 => "The buffer is too small for the result.",
        0xC000_0033 => "The object name is invalid.",
        0xC000_0034 => "The object name was not found.",
        0xC000_0035 => "The object name already exists.",
        0xC000_003A => "The object path was not found.",
        0xC000_0043 => "The file is in use by another process.",
        0xC000_0059 => "The driver requires a newer API version than this kernel provides.",
        0xC000_009A => "Insufficient resources to complete the operation.",
        0xC000_00B5 => "A callback did not return within its deadline.",
        0xC000_00BB => "The operation is not supported.",
        0xC000_00CA => "The network filter engine blocked the operation.",
        0xC000_0120 => "The operation was cancelled.",
        0xC000_0121 => "The object cannot be deleted.",
        0xC000_014C => "The registry hive is corrupt.",
        0xC000_014D => "The registry hive could not be written.",
        0xC000_0180 => "The registry key has subkeys and cannot be deleted.",
        0xC000_0184 => "The object is not in a state that allows the operation.",
        0xC000_0225 => "The item was not found.",
        0xC000_0236 => "The remote end refused the connection.",
        0xC000_036C => "The driver was blocked from loading.",
        0xC000_A000 => "The signature is missing or does not match the content.",
        0xC01C_0011 => "The altitude is already in use by another registration of this kind.",
        0xE000_0001 => "The limit of registrations of this kind has been reached.",
        0xE000_0002 => "The altitude is not a valid decimal altitude.",
        0xE000_0003 => "A driver callback threw an exception.",
        0xE000_0004 => "The signer is not in the kernel's trust store.",
        0xE000_0005 => "The held operation was already completed.",
        0xE000_0006 => "The name no longer names the file the operation was decided on.",
        _ => IsSuccess ? "Success." : "Error.",
    };

    /// <summary>Compares codes.</summary>
    /// <param name="other">The status to compare with.</param>
    /// <returns>True when both have the same code.</returns>
    public bool Equals(Status other) => Code == other.Code;

    /// <summary>Compares with a boxed status.</summary>
    /// <param name="obj">The object to compare with.</param>
    /// <returns>True when <paramref name="obj"/> is a status with the same code.</returns>
    public override bool Equals(object? obj) => obj is Status s && Equals(s);

    /// <summary>The hash of the code.</summary>
    /// <returns>The code as a hash.</returns>
    public override int GetHashCode() => (int)Code;

    /// <summary>The name and code, for example <c>AccessDenied (0xC0000022)</c>.</summary>
    /// <returns>A display string.</returns>
    public override string ToString() => Name + " (0x" + Code.ToString("X8", CultureInfo.InvariantCulture) + ")";

    /// <summary>Compares codes.</summary>
    /// <param name="left">The first status.</param>
    /// <param name="right">The second status.</param>
    /// <returns>True when the codes are equal.</returns>
    public static bool operator ==(Status left, Status right) => left.Code == right.Code;

    /// <summary>Compares codes.</summary>
    /// <param name="left">The first status.</param>
    /// <param name="right">The second status.</param>
    /// <returns>True when the codes differ.</returns>
    public static bool operator !=(Status left, Status right) => left.Code != right.Code;
}
