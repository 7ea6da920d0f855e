// The antivirus's signatures: SHA-256 digests of whole files, byte patterns found anywhere in a file, and the EICAR
// test file, which is built in so that the product can be checked without a signature file. The signature file
// format is documented in README.md; parsing refuses a bad line with its line number rather than skipping it,
// because a signature that silently does not load is a detection that silently does not happen.
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Palisade.Drivers.Antivirus;

/// <summary>A SHA-256 digest as four machine words: a dictionary key that hashes and compares without allocating.</summary>
internal readonly record struct Sha256Digest(ulong A, ulong B, ulong C, ulong D)
{
    public static Sha256Digest FromBytes(ReadOnlySpan<byte> digest) => new(
        BinaryPrimitives.ReadUInt64BigEndian(digest),
        BinaryPrimitives.ReadUInt64BigEndian(digest[8..]),
        BinaryPrimitives.ReadUInt64BigEndian(digest[16..]),
        BinaryPrimitives.ReadUInt64BigEndian(digest[24..]));
}

/// <summary>A byte pattern and the name reported when a file contains it.</summary>
internal sealed class BytePattern(byte[] bytes, string name)
{
    public byte[] Bytes { get; } = bytes;

    public string Name { get; } = name;
}

/// <summary>The signatures the scanner matches, immutable once parsed.</summary>
internal sealed class SignatureSet
{
    /// <summary>The name reported for the EICAR test file.</summary>
    public const string EicarName = "EICAR-Test-File";

    /// <summary>Patterns are at most this long, so that the scanner's overlap between chunks stays small.</summary>
    public const int MaxPatternLength = 1024;

    /// <summary>The shortest pattern accepted: shorter ones match ordinary files by chance.</summary>
    public const int MinPatternLength = 4;

    // The EICAR anti-virus test file (eicar.org): a harmless 68-byte text that every scanner detects by agreement.
    private static readonly byte[] s_eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"u8.ToArray();

    private readonly Dictionary<Sha256Digest, string> _digests;

    private SignatureSet(Dictionary<Sha256Digest, string> digests, BytePattern[] patterns)
    {
        _digests = digests;
        Patterns = patterns;
        int longest = 0;
        foreach (BytePattern p in patterns)
        {
            longest = Math.Max(longest, p.Bytes.Length);
        }

        LongestPattern = longest;
    }

    /// <summary>Only the built-in EICAR signature.</summary>
    public static SignatureSet BuiltIn { get; } = new([], []);

    /// <summary>The EICAR test string.</summary>
    public static ReadOnlySpan<byte> Eicar => s_eicar;

    /// <summary>The patterns; an array, so that the scan loop enumerates it without allocating.</summary>
    public BytePattern[] Patterns { get; }

    public int LongestPattern { get; }

    public int DigestCount => _digests.Count;

    /// <summary>The detection name for a file whose whole content has this digest, or null.</summary>
    public string? FindDigest(in Sha256Digest digest) => _digests.GetValueOrDefault(digest);

    /// <summary>
    /// True when a file is the EICAR test file as its specification defines it: the test string at the very start,
    /// optionally followed by white space, 128 bytes at most in all.
    /// </summary>
    public static bool IsEicar(ReadOnlySpan<byte> wholeFile)
    {
        if (wholeFile.Length > 128 || !wholeFile.StartsWith(s_eicar))
        {
            return false;
        }

        foreach (byte b in wholeFile[s_eicar.Length..])
        {
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' or 0x1A))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Parses a signature file (format in README.md).</summary>
    /// <param name="text">The file's content.</param>
    /// <param name="set">The signatures, with EICAR built in.</param>
    /// <param name="error">For a bad file, the first bad line's number and what is wrong with it.</param>
    public static bool TryParse(string text, [NotNullWhen(true)] out SignatureSet? set, [NotNullWhen(false)] out string? error)
    {
        set = null;
        var digests = new Dictionary<Sha256Digest, string>();
        var patterns = new List<BytePattern>();
        int lineNumber = 0;
        foreach (string raw in text.Split('\n'))
        {
            lineNumber++;
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            string[] parts = line.Split((char[]?)null, 3, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 3)
            {
                error = Line(lineNumber, "expected 'sha256 HEX NAME' or 'hex HEX NAME', got \"" + line + "\"");
                return false;
            }

            string kind = parts[0], hex = parts[1], name = parts[2].Trim();
            if (name.Length > 128)
            {
                error = Line(lineNumber, "the detection name is longer than 128 characters");
                return false;
            }

            if (!TryParseHex(hex, out byte[]? bytes))
            {
                error = Line(lineNumber, "\"" + hex + "\" is not an even number of hex digits");
                return false;
            }

            switch (kind.ToLowerInvariant())
            {
                case "sha256":
                    if (bytes.Length != 32)
                    {
                        error = Line(lineNumber, "a sha256 signature has 64 hex digits, this one has " + hex.Length.ToString(CultureInfo.InvariantCulture));
                        return false;
                    }

                    digests[Sha256Digest.FromBytes(bytes)] = name;
                    break;
                case "hex":
                    if (bytes.Length is < MinPatternLength or > MaxPatternLength)
                    {
                        error = Line(lineNumber, FormattableString.Invariant($"a hex pattern is {MinPatternLength} to {MaxPatternLength} bytes, this one is {bytes.Length}"));
                        return false;
                    }

                    patterns.Add(new BytePattern(bytes, name));
                    break;
                default:
                    error = Line(lineNumber, "unknown signature kind \"" + kind + "\" (expected sha256 or hex)");
                    return false;
            }
        }

        set = new SignatureSet(digests, [.. patterns]);
        error = null;
        return true;
    }

    private static string Line(int number, string message) => "line " + number.ToString(CultureInfo.InvariantCulture) + ": " + message;

    private static bool TryParseHex(string hex, [NotNullWhen(true)] out byte[]? bytes)
    {
        bytes = null;
        if (hex.Length == 0 || hex.Length % 2 != 0)
        {
            return false;
        }

        try
        {
            bytes = Convert.FromHexString(hex);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
