// What the self-protection driver protects, parsed from its parameters: program images (exact paths or folders),
// file path prefixes and registry key prefixes. Lists are separated by ';'. Matching is by whole path components,
// so /opt/product protects /opt/product/x but not /opt/productive.
using System.Diagnostics.CodeAnalysis;

namespace Palisade.Drivers.SelfProtection;

internal sealed class ProtectedSet
{
    public const string ProcessesKey = "processes";
    public const string FilesKey = "files";
    public const string KeysKey = "keys";

    private readonly string[] _images;
    private readonly string[] _files;
    private readonly string[] _keys;

    private ProtectedSet(string[] images, string[] files, string[] keys)
    {
        _images = images;
        _files = files;
        _keys = keys;
    }

    public int ImageCount => _images.Length;

    public int FileCount => _files.Length;

    public int KeyCount => _keys.Length;

    public static bool TryParse(IReadOnlyDictionary<string, string> parameters, [NotNullWhen(true)] out ProtectedSet? set, [NotNullWhen(false)] out string? error)
    {
        set = null;
        if (!TryList(parameters, ProcessesKey, '/', out string[]? images, out error)
            || !TryList(parameters, FilesKey, '/', out string[]? files, out error)
            || !TryList(parameters, KeysKey, '\\', out string[]? keys, out error))
        {
            return false;
        }

        if (images.Length + files.Length + keys.Length == 0)
        {
            error = "nothing to protect: set at least one of " + ProcessesKey + ", " + FilesKey + ", " + KeysKey;
            return false;
        }

        for (int i = 0; i < files.Length; i++)
        {
            files[i] = files[i].TrimEnd('/');
        }

        for (int i = 0; i < keys.Length; i++)
        {
            keys[i] = keys[i].TrimEnd('\\');
        }

        set = new ProtectedSet(images, files, keys);
        return true;
    }

    private static bool TryList(IReadOnlyDictionary<string, string> parameters, string key, char root, [NotNullWhen(true)] out string[]? list, [NotNullWhen(false)] out string? error)
    {
        list = [];
        error = null;
        if (!parameters.TryGetValue(key, out string? text))
        {
            return true;
        }

        list = text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (string item in list)
        {
            if (item[0] != root || item.Trim(root).Length == 0)
            {
                error = key + ": \"" + item + "\" is not an absolute " + (root == '/' ? "path" : "key path such as \\Registry\\Machine\\Software\\Vendor") + " below the root";
                list = null;
                return false;
            }
        }

        return true;
    }

    /// <summary>True when a program image is one of the product's: an exact path, or under a folder ending in '/'.</summary>
    public bool IsProtectedImage(string imagePath)
    {
        foreach (string image in _images)
        {
            if (image.EndsWith('/') ? imagePath.StartsWith(image, StringComparison.Ordinal) : string.Equals(image, imagePath, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when the path is a protected file or folder, or inside one.</summary>
    public bool IsProtectedFile(string? path) => path is not null && AnyCovers(_files, path, '/', StringComparison.Ordinal);

    /// <summary>True when renaming or deleting the path would move or remove a protected file: it is protected, or
    /// a folder that contains one.</summary>
    public bool AffectsProtectedFile(string? path) =>
        path is not null && (AnyCovers(_files, path, '/', StringComparison.Ordinal) || AnyInside(_files, path, '/', StringComparison.Ordinal));

    /// <summary>True when the key is protected or below a protected key (names compare without regard to case).</summary>
    public bool IsProtectedKey(string key) => AnyCovers(_keys, key, '\\', StringComparison.OrdinalIgnoreCase);

    /// <summary>True when renaming or deleting the key would move or remove a protected key.</summary>
    public bool AffectsProtectedKey(string key) =>
        AnyCovers(_keys, key, '\\', StringComparison.OrdinalIgnoreCase) || AnyInside(_keys, key, '\\', StringComparison.OrdinalIgnoreCase);

    // path is prefix itself or below it.
    private static bool AnyCovers(string[] prefixes, string path, char separator, StringComparison comparison)
    {
        foreach (string prefix in prefixes)
        {
            if (path.StartsWith(prefix, comparison) && (path.Length == prefix.Length || path[prefix.Length] == separator))
            {
                return true;
            }
        }

        return false;
    }

    // a protected prefix lies below path.
    private static bool AnyInside(string[] prefixes, string path, char separator, StringComparison comparison)
    {
        string parent = path.TrimEnd(separator);
        foreach (string prefix in prefixes)
        {
            if (prefix.Length > parent.Length && prefix.StartsWith(parent, comparison) && prefix[parent.Length] == separator)
            {
                return true;
            }
        }

        return false;
    }
}
