using Palisade.Api;

namespace Palisade.Kernel.Drivers;

/// <summary>Why the loader refused a driver package; each reason has its own <see cref="Status"/>.</summary>
internal enum DriverLoadRefusal
{
    /// <summary>Not refused: the driver is loaded.</summary>
    None,

    /// <summary>The folder does not exist or cannot be read as a package (<see cref="Status.ObjectPathNotFound"/>).</summary>
    PackageUnreadable,

    /// <summary>The package has no signature (<see cref="Status.InvalidSignature"/>).</summary>
    Unsigned,

    /// <summary>signature.json cannot be read (<see cref="Status.InvalidSignature"/>).</summary>
    SignatureMalformed,

    /// <summary>A file, the manifest or the signature was changed after signing (<see cref="Status.InvalidSignature"/>).</summary>
    Tampered,

    /// <summary>The signing key is not in the trust store (<see cref="Status.UntrustedSigner"/>).</summary>
    UntrustedSigner,

    /// <summary>manifest.json is missing or invalid (<see cref="Status.InvalidParameter"/>).</summary>
    ManifestInvalid,

    /// <summary>The driver needs a newer API than the kernel's (<see cref="Status.RevisionMismatch"/>).</summary>
    NeedsNewerApi,

    /// <summary>An assembly in the package references (or is) a kernel assembly other than Palisade.Api (<see cref="Status.DriverBlocked"/>).</summary>
    ReferencesKernelAssembly,

    /// <summary>The main assembly is missing or not a .NET assembly, or two files define one assembly (<see cref="Status.DriverBlocked"/>).</summary>
    InvalidAssembly,

    /// <summary>The entry type is not defined in the main assembly (<see cref="Status.DriverBlocked"/>).</summary>
    EntryTypeMissing,

    /// <summary>The entry type does not implement IDriver, is abstract or lacks a public parameterless constructor (<see cref="Status.DriverBlocked"/>).</summary>
    EntryTypeNotDriver,

    /// <summary>The entry type's constructor threw (<see cref="Status.CallbackFaulted"/>).</summary>
    EntryTypeFaulted,

    /// <summary>The driver verifier found code that escapes type safety or the API (<see cref="Status.DriverBlocked"/>);
    /// the message names the member, the method it occurs in and the rule. Protected flavor only.</summary>
    VerifierRefused,
}

/// <summary>The outcome of <see cref="DriverLoader.Load"/>: a status for the API's vocabulary, a reason for tests and
/// tools, and a message for the operator that names the file, key or type concerned.</summary>
internal sealed record DriverLoadResult(Status Status, DriverLoadRefusal Refusal, string Message)
{
    /// <summary>True when the driver was loaded.</summary>
    public bool IsLoaded => Refusal == DriverLoadRefusal.None;

    /// <summary>The status that goes with each reason.</summary>
    public static Status StatusOf(DriverLoadRefusal refusal) => refusal switch
    {
        DriverLoadRefusal.None => Status.Success,
        DriverLoadRefusal.PackageUnreadable => Status.ObjectPathNotFound,
        DriverLoadRefusal.Unsigned or DriverLoadRefusal.SignatureMalformed or DriverLoadRefusal.Tampered => Status.InvalidSignature,
        DriverLoadRefusal.UntrustedSigner => Status.UntrustedSigner,
        DriverLoadRefusal.ManifestInvalid => Status.InvalidParameter,
        DriverLoadRefusal.NeedsNewerApi => Status.RevisionMismatch,
        DriverLoadRefusal.EntryTypeFaulted => Status.CallbackFaulted,
        _ => Status.DriverBlocked,
    };

    internal static DriverLoadResult Refused(DriverLoadRefusal refusal, string message) => new(StatusOf(refusal), refusal, message);
}
