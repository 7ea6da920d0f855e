// The application-control allow list: which program images may run, by content (SHA-256 of the image file) or by
// location (an exact path, a folder prefix ending in '/', or a glob). Format in README.md; a bad line is refused
// with its line number, because a rule that silently does not load changes what runs.
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Palisade.Drivers.AppControl;

/// <summary>A SHA-256 digest as four machine words: hashes and compares without allocating.</summary>
internal readonly record struct ImageDigest(ulong A, ulong B, ulong C, ulong D)
{
    public static ImageDigest FromBytes(ReadOnlySpan<byte> digest) => new(
        BinaryPrimitives.ReadUInt64BigEndian(digest),
        BinaryPrimitives.ReadUInt64BigEndian(digest[8..]),
        BinaryPrimitives.ReadUInt64BigEndian(digest[16..]),
        BinaryPrimitives.ReadUInt64BigEndian(digest[24..]));

    public override string ToString() => FormattableString.Invariant($"{A:x16}{B:x16}{C:x16}{D:x16}");
}

internal sealed class AllowList
{
    private readonly HashSet<ImageDigest> _digests;
    private readonly string[] _paths;

    private AllowList(HashSet<ImageDigest> digests, string[] paths)
    {
        _digests = digests;
        _paths = paths;
    }

    public int DigestCount => _digests.Count;

    public int PathCount => _paths.Length;

    public bool AllowsDigest(in ImageDigest digest) => _digests.Contains(digest);

    /// <summary>True when a path rule names the image: exact, folder prefix (rule ends in '/') or glob.</summary>
    public bool AllowsPath(string imagePath)
    {
        foreach (string rule in _paths)
        {
            if (Glob.Matches(rule, imagePath))
            {
                return true;
            }
        }

        return false;
    }

    public static bool TryParse(string text, [NotNullWhen(true)] out AllowList? list, [NotNullWhen(false)] out string? error)
    {
        list = null;
        var digests = new HashSet<ImageDigest>();
        var paths = new List<string>();
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
            string where = "line " + lineNumber.ToString(CultureInfo.InvariantCulture) + ": ";
            if (parts.Length < 2)
            {
                error = where + "expected 'sha256 HEX [comment]' or 'path PATTERN', got \"" + line + "\"";
                return false;
            }

            switch (parts[0])
            {
                case "sha256":
                    if (parts[1].Length != 64 || !IsHex(parts[1]))
                    {
                        error = where + "a sha256 entry has 64 hex digits, got \"" + parts[1] + "\"";
                        return false;
                    }

                    digests.Add(ImageDigest.FromBytes(Convert.FromHexString(parts[1])));
                    break;
                case "path":
                    if (parts.Length > 2 || parts[1][0] != '/')
                    {
                        error = where + "a path entry is one absolute path, folder (ending in '/') or glob without spaces";
                        return false;
                    }

                    paths.Add(parts[1]);
                    break;
                default:
                    error = where + "unknown entry \"" + parts[0] + "\" (expected sha256 or path)";
                    return false;
            }
        }

        list = new AllowList(digests, [.. paths]);
        error = null;
        return true;
    }

    private static bool IsHex(string s)
    {
        foreach (char c in s)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>
/// Path patterns: <c>*</c> matches within one path component, <c>**</c> across components, <c>?</c> one character
/// other than '/'; a pattern ending in '/' matches everything under that folder; anything else matches exactly.
/// </summary>
internal static class Glob
{
    public static bool Matches(string pattern, string path)
    {
        if (pattern.EndsWith('/'))
        {
            return path.StartsWith(pattern, StringComparison.Ordinal) && path.Length > pattern.Length;
        }

        return Match(pattern, path);
    }

    private static bool Match(ReadOnlySpan<char> p, ReadOnlySpan<char> s)
    {
        while (!p.IsEmpty)
        {
            if (p.StartsWith("**"))
            {
                ReadOnlySpan<char> rest = p[2..];
                for (int i = 0; i <= s.Length; i++)
                {
                    if (Match(rest, s[i..]))
                    {
                        return true;
                    }
                }

                return false;
            }

            if (p[0] == '*')
            {
                ReadOnlySpan<char> rest = p[1..];
                for (int i = 0; i <= s.Length; i++)
                {
                    if (Match(rest, s[i..]))
                    {
                        return true;
                    }

                    if (i < s.Length && s[i] == '/')
                    {
                        return false;
                    }
                }

                return false;
            }

            if (s.IsEmpty || (p[0] == '?' ? s[0] == '/' : p[0] != s[0]))
            {
                return false;
            }

            p = p[1..];
            s = s[1..];
        }

        return s.IsEmpty;
    }
}
