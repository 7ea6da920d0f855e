// The manifest of a driver package (manifest.json at the package root): who the driver is, which assembly and
// type the loader starts, which API version it needs and which altitudes it asks for. Parsing is strict: unknown
// properties, wrong types and out-of-range values are refused with a message that names the property, because a
// vendor's typo must fail at signing time rather than silently change what the kernel loads.
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.Json;
using Palisade.Api;

namespace Palisade.Kernel.Drivers;

/// <summary>One altitude a driver asks for in its manifest: the area it registers in and the altitude string.</summary>
/// <param name="Kind">The area: <see cref="ApiArea.Objects"/>, <see cref="ApiArea.Registry"/> or <see cref="ApiArea.Files"/>.</param>
/// <param name="Altitude">A decimal altitude such as <c>320000</c> or <c>320000.5</c>.</param>
internal sealed record RequestedAltitude(ApiArea Kind, string Altitude);

/// <summary>Where a driver's manifest asks it to run (the manifest's <c>hosting</c> property).</summary>
internal enum DriverHosting
{
    /// <summary>The manifest says nothing: isolated in the protected flavor, inside the kernel in the compat flavor.</summary>
    Unstated,

    /// <summary><c>"isolated"</c>: in a driver host process of its own, reaching the kernel only through the API.</summary>
    Isolated,

    /// <summary><c>"in-kernel"</c>: inside the kernel process, verified at load in the protected flavor (the exception:
    /// the kernel's own components, and drivers that need the kernel process).</summary>
    InKernel,
}

/// <summary>A parsed, validated manifest.json.</summary>
internal sealed class DriverManifest
{
    /// <summary>The file name of the manifest at the root of a package.</summary>
    public const string FileName = "manifest.json";

    private const int MaxNameLength = 64;
    private const int MaxVendorLength = 128;
    private const int MaxTypeNameLength = 1024;
    private const int MaxAltitudes = 16;

    private static ReadOnlySpan<byte> Utf8ByteOrderMark => [0xEF, 0xBB, 0xBF];

    private static readonly string[] KnownProperties =
        ["name", "vendor", "version", "assembly", "entryType", "minimumApiVersion", "altitudes", "hosting"];

    private DriverManifest(
        string name,
        string vendor,
        Version version,
        string assembly,
        string entryType,
        Version minimumApiVersion,
        IReadOnlyList<RequestedAltitude> altitudes,
        DriverHosting hosting)
    {
        Name = name;
        Vendor = vendor;
        Version = version;
        Assembly = assembly;
        EntryType = entryType;
        MinimumApiVersion = minimumApiVersion;
        Altitudes = altitudes;
        Hosting = hosting;
    }

    /// <summary>The driver's name: 1–64 characters of letters, digits, '.', '-' and '_', starting with a letter or digit.
    /// It names the driver everywhere (loaded driver list, registry Services key, events).</summary>
    public string Name { get; }

    /// <summary>The vendor, free text of 1–128 printable characters.</summary>
    public string Vendor { get; }

    /// <summary>The driver's own version (2 to 4 numeric parts).</summary>
    public Version Version { get; }

    /// <summary>The file name of the driver's main assembly at the package root, for example <c>Contoso.Av.dll</c>.</summary>
    public string Assembly { get; }

    /// <summary>The full name (namespace and name) of the public class in <see cref="Assembly"/> that implements <see cref="IDriver"/>.</summary>
    public string EntryType { get; }

    /// <summary>The lowest API version (major.minor) the driver works with.</summary>
    public Version MinimumApiVersion { get; }

    /// <summary>The altitudes the driver asks for; unique per kind.</summary>
    public IReadOnlyList<RequestedAltitude> Altitudes { get; }

    /// <summary>Where the driver asks to run: <c>"isolated"</c> or <c>"in-kernel"</c>; <see cref="DriverHosting.Unstated"/>
    /// when the manifest has no <c>hosting</c> property.</summary>
    public DriverHosting Hosting { get; }

    /// <summary>Parses and validates a manifest.</summary>
    /// <param name="utf8Json">The content of manifest.json.</param>
    /// <param name="manifest">The manifest when valid.</param>
    /// <param name="error">Why the manifest is invalid, naming the property, when it is not.</param>
    /// <returns>True when the manifest is valid.</returns>
    public static bool TryParse(
        ReadOnlySpan<byte> utf8Json,
        [NotNullWhen(true)] out DriverManifest? manifest,
        [NotNullWhen(false)] out string? error)
    {
        manifest = null;
        if (utf8Json.StartsWith(Utf8ByteOrderMark))
        {
            // Editors on some systems write one; it is not JSON but carries no meaning either.
            utf8Json = utf8Json[Utf8ByteOrderMark.Length..];
        }

        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(utf8Json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
            if (!JsonDocument.TryParseValue(ref reader, out JsonDocument? parsed))
            {
                error = "manifest.json is empty.";
                return false;
            }

            document = parsed;
        }
        catch (JsonException e)
        {
            error = "manifest.json is not valid JSON: " + e.Message;
            return false;
        }

        using (document)
        {
            return TryRead(document.RootElement, out manifest, out error);
        }
    }

    private static bool TryRead(JsonElement root, [NotNullWhen(true)] out DriverManifest? manifest, [NotNullWhen(false)] out string? error)
    {
        manifest = null;
        if (root.ValueKind != JsonValueKind.Object)
        {
            error = "manifest.json must contain a JSON object.";
            return false;
        }

        foreach (JsonProperty property in root.EnumerateObject())
        {
            if (Array.IndexOf(KnownProperties, property.Name) < 0)
            {
                error = $"manifest.json has an unknown property \"{property.Name}\"; the known properties are {string.Join(", ", KnownProperties)}.";
                return false;
            }
        }

        if (!TryGetString(root, "name", out string? name, out error)
            || !TryGetString(root, "vendor", out string? vendor, out error)
            || !TryGetString(root, "version", out string? versionText, out error)
            || !TryGetString(root, "assembly", out string? assembly, out error)
            || !TryGetString(root, "entryType", out string? entryType, out error)
            || !TryGetString(root, "minimumApiVersion", out string? apiText, out error))
        {
            return false;
        }

        if (!IsValidName(name))
        {
            error = $"manifest.json \"name\" is \"{name}\": a name is 1 to {MaxNameLength} letters, digits, '.', '-' or '_', starting with a letter or digit.";
            return false;
        }

        if (vendor.Length is 0 or > MaxVendorLength || !IsPrintable(vendor))
        {
            error = $"manifest.json \"vendor\" must be 1 to {MaxVendorLength} printable characters.";
            return false;
        }

        if (!Version.TryParse(versionText, out Version? version) || versionText.Contains('+', StringComparison.Ordinal))
        {
            error = $"manifest.json \"version\" is \"{versionText}\": a version is 2 to 4 numbers separated by dots, for example 1.2.0.";
            return false;
        }

        if (!IsValidAssemblyFileName(assembly))
        {
            error = $"manifest.json \"assembly\" is \"{assembly}\": it must be the file name of an assembly at the package root, ending in .dll.";
            return false;
        }

        if (!IsValidTypeName(entryType))
        {
            error = $"manifest.json \"entryType\" is \"{entryType}\": it must be the full name of a top-level class, for example Contoso.Antivirus.AntivirusDriver, without an assembly name.";
            return false;
        }

        if (!TryParseApiVersion(apiText, out Version? minimumApiVersion))
        {
            error = $"manifest.json \"minimumApiVersion\" is \"{apiText}\": it must be major.minor, for example 1.0.";
            return false;
        }

        if (!TryReadAltitudes(root, out List<RequestedAltitude>? altitudes, out error))
        {
            return false;
        }

        if (!TryReadHosting(root, out DriverHosting hosting, out error))
        {
            return false;
        }

        manifest = new DriverManifest(name, vendor, version, assembly, entryType, minimumApiVersion, altitudes, hosting);
        return true;
    }

    private static bool TryGetString(JsonElement root, string property, [NotNullWhen(true)] out string? value, [NotNullWhen(false)] out string? error)
    {
        value = null;
        if (!root.TryGetProperty(property, out JsonElement element))
        {
            error = $"manifest.json is missing the required property \"{property}\".";
            return false;
        }

        if (element.ValueKind != JsonValueKind.String)
        {
            error = $"manifest.json \"{property}\" must be a string.";
            return false;
        }

        value = element.GetString()!;
        error = null;
        return true;
    }

    private static bool TryReadHosting(JsonElement root, out DriverHosting hosting, [NotNullWhen(false)] out string? error)
    {
        hosting = DriverHosting.Unstated;
        error = null;
        if (!root.TryGetProperty("hosting", out JsonElement element))
        {
            return true;
        }

        hosting = element.ValueKind == JsonValueKind.String
            ? element.GetString() switch
            {
                "isolated" => DriverHosting.Isolated,
                "in-kernel" => DriverHosting.InKernel,
                _ => DriverHosting.Unstated,
            }
            : DriverHosting.Unstated;
        if (hosting == DriverHosting.Unstated)
        {
            error = "manifest.json \"hosting\" must be \"isolated\" (a driver host process of its own) or \"in-kernel\" (inside the kernel process, verified at load).";
            return false;
        }

        return true;
    }

    private static bool TryReadAltitudes(JsonElement root, [NotNullWhen(true)] out List<RequestedAltitude>? altitudes, [NotNullWhen(false)] out string? error)
    {
        altitudes = [];
        error = null;
        if (!root.TryGetProperty("altitudes", out JsonElement list))
        {
            return true;
        }

        if (list.ValueKind != JsonValueKind.Array)
        {
            error = "manifest.json \"altitudes\" must be an array of {\"kind\", \"altitude\"} objects.";
            return false;
        }

        if (list.GetArrayLength() > MaxAltitudes)
        {
            error = $"manifest.json \"altitudes\" lists more than {MaxAltitudes} altitudes.";
            return false;
        }

        int index = 0;
        foreach (JsonElement item in list.EnumerateArray())
        {
            string where = $"manifest.json \"altitudes\"[{index}]";
            if (item.ValueKind != JsonValueKind.Object
                || !item.TryGetProperty("kind", out JsonElement kindElement) || kindElement.ValueKind != JsonValueKind.String
                || !item.TryGetProperty("altitude", out JsonElement altitudeElement) || altitudeElement.ValueKind != JsonValueKind.String)
            {
                error = where + " must be an object with string properties \"kind\" and \"altitude\".";
                return false;
            }

            foreach (JsonProperty property in item.EnumerateObject())
            {
                if (property.Name is not ("kind" or "altitude"))
                {
                    error = $"{where} has an unknown property \"{property.Name}\".";
                    altitudes = null;
                    return false;
                }
            }

            string kindText = kindElement.GetString()!;
            ApiArea? kind = kindText switch
            {
                "objects" => ApiArea.Objects,
                "registry" => ApiArea.Registry,
                "files" => ApiArea.Files,
                _ => null,
            };
            if (kind is null)
            {
                error = $"{where} \"kind\" is \"{kindText}\": the kinds that take an altitude are objects, registry and files.";
                altitudes = null;
                return false;
            }

            string altitude = altitudeElement.GetString()!;
            if (!IsValidAltitude(altitude))
            {
                error = $"{where} \"altitude\" is \"{altitude}\": an altitude is a positive decimal number of at most 12 digits with an optional fraction, for example 320000 or 320000.5.";
                altitudes = null;
                return false;
            }

            foreach (RequestedAltitude existing in altitudes)
            {
                if (existing.Kind == kind && existing.Altitude == altitude)
                {
                    error = $"{where} repeats the {kindText} altitude {altitude}.";
                    altitudes = null;
                    return false;
                }
            }

            altitudes.Add(new RequestedAltitude(kind.Value, altitude));
            index++;
        }

        return true;
    }

    internal static bool IsValidName(string name)
    {
        if (name.Length is 0 or > MaxNameLength || !char.IsAsciiLetterOrDigit(name[0]))
        {
            return false;
        }

        foreach (char c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The altitude syntax of the API: up to 12 integer digits, an optional fraction of up to 12 digits, not zero.</summary>
    internal static bool IsValidAltitude(string altitude)
    {
        int dot = altitude.IndexOf('.', StringComparison.Ordinal);
        ReadOnlySpan<char> whole = dot < 0 ? altitude : altitude.AsSpan(0, dot);
        ReadOnlySpan<char> fraction = dot < 0 ? [] : altitude.AsSpan(dot + 1);
        if (whole.Length is 0 or > 12 || (dot >= 0 && fraction.Length is 0 or > 12))
        {
            return false;
        }

        bool nonZero = false;
        foreach (char c in whole)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            nonZero |= c != '0';
        }

        foreach (char c in fraction)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            nonZero |= c != '0';
        }

        return nonZero;
    }

    private static bool IsValidAssemblyFileName(string assembly) =>
        assembly.Length is > 4 and <= 255
        && assembly.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
        && assembly.IndexOfAny(['/', '\\', '\0']) < 0
        && assembly is not (".." or ".")
        && IsPrintable(assembly);

    private static bool IsValidTypeName(string typeName)
    {
        if (typeName.Length is 0 or > MaxTypeNameLength || typeName[0] == '.' || typeName[^1] == '.')
        {
            return false;
        }

        foreach (char c in typeName)
        {
            if (!char.IsLetterOrDigit(c) && c is not ('.' or '_' or '`'))
            {
                return false;
            }
        }

        return !typeName.Contains("..", StringComparison.Ordinal);
    }

    private static bool TryParseApiVersion(string text, [NotNullWhen(true)] out Version? version)
    {
        version = null;
        int dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0
            || !int.TryParse(text.AsSpan(0, dot), NumberStyles.None, CultureInfo.InvariantCulture, out int major)
            || !int.TryParse(text.AsSpan(dot + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int minor))
        {
            return false;
        }

        version = new Version(major, minor);
        return true;
    }

    private static bool IsPrintable(string text)
    {
        foreach (char c in text)
        {
            if (char.IsControl(c))
            {
                return false;
            }
        }

        return true;
    }
}
