// The antivirus's parameters (IDriverContext.Parameters), validated once at load. Each key is documented in
// README.md and docs/scenarios.md; an unknown value is refused with a message rather than replaced by a default.
using System.Diagnostics.CodeAnalysis;
using Palisade.Api;

namespace Palisade.Drivers.Antivirus;

internal sealed class AntivirusOptions
{
    public const string ScanOnReadKey = "scanOnRead";
    public const string SignaturesKey = "signatures";
    public const string QuarantineKey = "quarantine";
    public const string MaxScanSizeKey = "maxScanSize";
    public const string ScanServiceKey = "scanService";
    public const string AsyncScanKey = "asyncScan";
    public const string HoldTimeKey = "holdTime";
    public const string OnTimeoutKey = "onTimeout";
    public const string VerdictCacheKey = "verdictCache";
    public const long DefaultMaxScanSize = 64L * 1024 * 1024;
    public const int DefaultHoldSeconds = 30;

    private AntivirusOptions(bool scanOnRead, SignatureSet signatures, string? quarantine, long maxScanSize, string? scanService, bool asyncScan,
        TimeSpan holdTime, TimeoutVerdict onTimeout, int verdictCache)
    {
        VerdictCache = verdictCache;
        MaxScanSize = maxScanSize;
        ScanOnRead = scanOnRead;
        Signatures = signatures;
        Quarantine = quarantine;
        ScanService = scanService;
        AsyncScan = asyncScan;
        HoldTime = holdTime;
        OnTimeout = onTimeout;
    }

    /// <summary>The name of the port a user-mode scanning service connects to (ScanService.cs), or null to scan in the driver.</summary>
    public string? ScanService { get; }

    /// <summary>Scan on the driver's worker threads while the open is held, instead of on the guest's thread.</summary>
    public bool AsyncScan { get; }

    /// <summary>True when opens are held while they are scanned (by the service, or on a worker thread).</summary>
    public bool Holds => ScanService is not null || AsyncScan;

    /// <summary>How long one open may be held for its scan.</summary>
    public TimeSpan HoldTime { get; }

    /// <summary>The verdict for an open whose scan did not end in time (or whose callback faulted).</summary>
    public TimeoutVerdict OnTimeout { get; }

    /// <summary>How many clean verdicts the kernel keeps for the scan filter (0: the kernel's default, 4,096).</summary>
    public int VerdictCache { get; }

    /// <summary>Scan files opened for reading, not only those opened for execution. Default true.</summary>
    public bool ScanOnRead { get; }

    public SignatureSet Signatures { get; }

    /// <summary>The most bytes of one file a scan reads; beyond it only patterns in the first part are found.</summary>
    public long MaxScanSize { get; }

    /// <summary>The absolute folder infected files are moved to (it must exist), or null to leave them in place.</summary>
    public string? Quarantine { get; }

    /// <summary>Validates the parameters; a signature file is read through <paramref name="files"/>.</summary>
    public static bool TryParse(IReadOnlyDictionary<string, string> parameters, IFilterManager files, [NotNullWhen(true)] out AntivirusOptions? options, [NotNullWhen(false)] out string? error)
    {
        options = null;
        bool scanOnRead = true;
        if (parameters.TryGetValue(ScanOnReadKey, out string? text) && !bool.TryParse(text, out scanOnRead))
        {
            error = ScanOnReadKey + " is \"" + text + "\"; expected true or false";
            return false;
        }

        SignatureSet signatures = SignatureSet.BuiltIn;
        if (parameters.TryGetValue(SignaturesKey, out string? file))
        {
            if (!ConfigurationFile.TryRead(files, file, out string? content, out string? why))
            {
                error = SignaturesKey + ": " + why;
                return false;
            }

            if (!SignatureSet.TryParse(content, out SignatureSet? parsed, out why))
            {
                error = SignaturesKey + " \"" + file + "\" " + why;
                return false;
            }

            signatures = parsed;
        }

        string? quarantine = null;
        if (parameters.TryGetValue(QuarantineKey, out string? folder))
        {
            if (!Path.IsPathFullyQualified(folder))
            {
                error = QuarantineKey + " is \"" + folder + "\"; expected an absolute folder path";
                return false;
            }

            // The folder is the operator's to create (mode 0700): a driver inside the kernel has no directory-creating
            // I/O. A missing folder shows as "quarantine failed: ObjectPathNotFound" in the detection event.
            quarantine = folder;
        }

        long maxScanSize = DefaultMaxScanSize;
        if (parameters.TryGetValue(MaxScanSizeKey, out string? size)
            && (!long.TryParse(size, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out maxScanSize) || maxScanSize < 4096))
        {
            error = MaxScanSizeKey + " is \"" + size + "\"; expected a number of bytes, at least 4096";
            return false;
        }

        string? scanService = null;
        if (parameters.TryGetValue(ScanServiceKey, out string? service))
        {
            if (service.Length is 0 or > 64 || !char.IsAsciiLetterOrDigit(service[0]) || !service.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
            {
                error = ScanServiceKey + " is \"" + service + "\"; expected the name of the scanning service's port (1 to 64 of A-Z a-z 0-9 . - _, starting with a letter or digit)";
                return false;
            }

            scanService = service;
        }

        bool asyncScan = false;
        if (parameters.TryGetValue(AsyncScanKey, out string? async) && !bool.TryParse(async, out asyncScan))
        {
            error = AsyncScanKey + " is \"" + async + "\"; expected true or false";
            return false;
        }

        int holdSeconds = DefaultHoldSeconds;
        if (parameters.TryGetValue(HoldTimeKey, out string? hold)
            && (!int.TryParse(hold, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out holdSeconds) || holdSeconds is < 1 or > 600))
        {
            error = HoldTimeKey + " is \"" + hold + "\"; expected a number of seconds from 1 to 600";
            return false;
        }

        TimeoutVerdict onTimeout = TimeoutVerdict.Deny;
        if (parameters.TryGetValue(OnTimeoutKey, out string? verdict))
        {
            if (verdict is not ("allow" or "deny"))
            {
                error = OnTimeoutKey + " is \"" + verdict + "\"; expected allow or deny";
                return false;
            }

            onTimeout = verdict == "allow" ? TimeoutVerdict.Allow : TimeoutVerdict.Deny;
        }

        int verdictCache = 0;
        if (parameters.TryGetValue(VerdictCacheKey, out string? cache)
            && (!int.TryParse(cache, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out verdictCache)
                || verdictCache is < 4 or > FilterRegistration.MaxVerdictCacheCapacity))
        {
            error = VerdictCacheKey + " is \"" + cache + "\"; expected a number of verdicts from 4 to " + FilterRegistration.MaxVerdictCacheCapacity.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return false;
        }

        options = new AntivirusOptions(scanOnRead, signatures, quarantine, maxScanSize, scanService, asyncScan, TimeSpan.FromSeconds(holdSeconds), onTimeout, verdictCache);
        error = null;
        return true;
    }
}
