// The antivirus's parameters (IDriverContext.Parameters), validated once at load. Each key is documented in
// README.md and docs/scenarios.md; an unknown value is refused with a message rather than replaced by a default.
using System.Diagnostics.CodeAnalysis;

namespace Palisade.Drivers.Antivirus;

internal sealed class AntivirusOptions
{
    public const string ScanOnReadKey = "scanOnRead";
    public const string SignaturesKey = "signatures";
    public const string QuarantineKey = "quarantine";
    public const string MaxScanSizeKey = "maxScanSize";
    public const long DefaultMaxScanSize = 64L * 1024 * 1024;

    private AntivirusOptions(bool scanOnRead, SignatureSet signatures, string? quarantine, long maxScanSize)
    {
        MaxScanSize = maxScanSize;
        ScanOnRead = scanOnRead;
        Signatures = signatures;
        Quarantine = quarantine;
    }

    /// <summary>Scan files opened for reading, not only those opened for execution. Default true.</summary>
    public bool ScanOnRead { get; }

    public SignatureSet Signatures { get; }

    /// <summary>The most bytes of one file a scan reads; beyond it only patterns in the first part are found.</summary>
    public long MaxScanSize { get; }

    /// <summary>The absolute folder infected files are moved to, or null to leave them in place.</summary>
    public string? Quarantine { get; }

    public static bool TryParse(IReadOnlyDictionary<string, string> parameters, [NotNullWhen(true)] out AntivirusOptions? options, [NotNullWhen(false)] out string? error)
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
            string content;
            try
            {
                content = File.ReadAllText(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                error = SignaturesKey + ": cannot read \"" + file + "\": " + e.Message;
                return false;
            }

            if (!SignatureSet.TryParse(content, out SignatureSet? parsed, out string? why))
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

            try
            {
                Directory.CreateDirectory(folder);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error = QuarantineKey + ": cannot create \"" + folder + "\": " + e.Message;
                return false;
            }

            quarantine = folder;
        }

        long maxScanSize = DefaultMaxScanSize;
        if (parameters.TryGetValue(MaxScanSizeKey, out string? size)
            && (!long.TryParse(size, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out maxScanSize) || maxScanSize < 4096))
        {
            error = MaxScanSizeKey + " is \"" + size + "\"; expected a number of bytes, at least 4096";
            return false;
        }

        options = new AntivirusOptions(scanOnRead, signatures, quarantine, maxScanSize);
        error = null;
        return true;
    }
}
