// The kernel's trust store: the public keys whose driver signatures the protected flavor accepts. It is a folder
// with one JSON file per key, named by key id (<keyid>.json: name, key id, public key PEM), so that lookup by the
// key id in a signature is one file read and adding or removing a key never rewrites the others.
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Palisade.Kernel.Drivers;

/// <summary>A key in the trust store.</summary>
/// <param name="Name">The name given when it was added; unique in the store.</param>
/// <param name="KeyId">Its key id (<see cref="SigningKeys.KeyId"/>).</param>
/// <param name="PublicKeyPem">The public key, SubjectPublicKeyInfo PEM.</param>
internal sealed record TrustedKey(string Name, string KeyId, string PublicKeyPem)
{
    /// <summary>Creates the ECDSA key for verification. The caller disposes it.</summary>
    public ECDsa CreateKey() => SigningKeys.ImportPublicPem(PublicKeyPem, $"trusted key {Name}");
}

/// <summary>The trust store folder.</summary>
internal sealed class TrustStore
{
    private const string EntrySuffix = ".json";

    /// <summary>Opens (without creating) the trust store in <paramref name="directory"/>.</summary>
    public TrustStore(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = Path.GetFullPath(directory);
    }

    /// <summary>The store's folder. It is created by the first <see cref="Add"/>; a missing folder is an empty store.</summary>
    public string Directory { get; }

    /// <summary>The trust store of a Palisade home folder.</summary>
    public static TrustStore ForHome(string home) => new(PalisadeHome.TrustDirectory(home));

    /// <summary>Adds a public key.</summary>
    /// <param name="publicKeyPem">The key, PEM; a private key PEM is accepted and only its public half is stored.</param>
    /// <param name="name">The name to list it under: 1–64 letters, digits, '.', '-' or '_'.</param>
    /// <param name="source">Where the key came from, for messages.</param>
    /// <returns>The stored entry.</returns>
    /// <exception cref="DriverPackageException">The key is not P-256, the name is invalid or taken, or the key is already trusted
    /// under another name (the same key under the same name is accepted again and returns the existing entry).</exception>
    public TrustedKey Add(string publicKeyPem, string name, string source)
    {
        ArgumentNullException.ThrowIfNull(publicKeyPem);
        ArgumentNullException.ThrowIfNull(name);
        if (!DriverManifest.IsValidName(name))
        {
            throw new DriverPackageException($"\"{name}\" is not a valid key name: use 1 to 64 letters, digits, '.', '-' or '_', starting with a letter or digit.");
        }

        if (SigningKeys.IsKeyId(name))
        {
            throw new DriverPackageException($"\"{name}\" looks like a key id; choose a name that does not, so that remove NAME|ID is unambiguous.");
        }

        string keyId;
        string pem;
        using (ECDsa key = SigningKeys.ImportPublicPem(publicKeyPem, source))
        {
            keyId = SigningKeys.KeyId(key);
            pem = SigningKeys.ExportPublicPem(key);
        }

        foreach (TrustedKey existing in List())
        {
            if (existing.KeyId == keyId && string.Equals(existing.Name, name, StringComparison.Ordinal))
            {
                return existing; // Trusting the same key under the same name again changes nothing.
            }

            if (existing.KeyId == keyId)
            {
                throw new DriverPackageException($"the key {keyId} is already trusted, as \"{existing.Name}\".");
            }

            if (string.Equals(existing.Name, name, StringComparison.Ordinal))
            {
                throw new DriverPackageException($"the name \"{name}\" is already used by key {existing.KeyId}; choose another with --name.");
            }
        }

        var entry = new TrustedKey(name, keyId, pem);
        System.IO.Directory.CreateDirectory(Directory);
        WriteAtomically(EntryPath(keyId), Serialize(entry));
        return entry;
    }

    /// <summary>Every trusted key, sorted by name.</summary>
    /// <exception cref="DriverPackageException">An entry file is damaged; the message names it.</exception>
    public IReadOnlyList<TrustedKey> List()
    {
        var keys = new List<TrustedKey>();
        if (!System.IO.Directory.Exists(Directory))
        {
            return keys;
        }

        foreach (string path in System.IO.Directory.EnumerateFiles(Directory, "*" + EntrySuffix))
        {
            if (!TryReadEntry(path, out TrustedKey? key, out string? error))
            {
                throw new DriverPackageException(error);
            }

            keys.Add(key);
        }

        keys.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        return keys;
    }

    /// <summary>Finds the key with a key id. A damaged or inconsistent entry is not trusted.</summary>
    /// <param name="keyId">The key id from a signature.</param>
    /// <returns>The key, or null when it is not trusted.</returns>
    public TrustedKey? Find(string keyId)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        if (!SigningKeys.IsKeyId(keyId))
        {
            return null;
        }

        string path = EntryPath(keyId);
        return File.Exists(path) && TryReadEntry(path, out TrustedKey? key, out _) ? key : null;
    }

    /// <summary>Removes a key by name or key id.</summary>
    /// <returns>The removed entry.</returns>
    /// <exception cref="DriverPackageException">No key has that name or id.</exception>
    public TrustedKey Remove(string nameOrKeyId)
    {
        ArgumentNullException.ThrowIfNull(nameOrKeyId);
        foreach (TrustedKey key in List())
        {
            if (string.Equals(key.Name, nameOrKeyId, StringComparison.Ordinal) || key.KeyId == nameOrKeyId)
            {
                File.Delete(EntryPath(key.KeyId));
                return key;
            }
        }

        throw new DriverPackageException($"no trusted key has the name or key id \"{nameOrKeyId}\" (trust store {Directory}).");
    }

    private string EntryPath(string keyId) => Path.Combine(Directory, keyId + EntrySuffix);

    private static byte[] Serialize(TrustedKey key)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteString("name", key.Name);
            writer.WriteString("keyId", key.KeyId);
            writer.WriteString("publicKey", key.PublicKeyPem);
            writer.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    // The entry's name, key id and file name must agree with the key itself: a file copied under another key's id
    // must not make that other key's signatures verify against this one, and vice versa.
    private static bool TryReadEntry(string path, [NotNullWhen(true)] out TrustedKey? key, [NotNullWhen(false)] out string? error)
    {
        key = null;
        string expectedId = Path.GetFileNameWithoutExtension(path);
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("name", out JsonElement name) || name.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("keyId", out JsonElement keyId) || keyId.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("publicKey", out JsonElement publicKey) || publicKey.ValueKind != JsonValueKind.String)
            {
                error = $"the trust store entry {path} is damaged: it needs string properties name, keyId and publicKey.";
                return false;
            }

            using ECDsa ecdsa = SigningKeys.ImportPublicPem(publicKey.GetString()!, path);
            string actualId = SigningKeys.KeyId(ecdsa);
            if (actualId != keyId.GetString() || actualId != expectedId)
            {
                error = $"the trust store entry {path} is damaged: its key has id {actualId}, which does not match its file name or keyId.";
                return false;
            }

            key = new TrustedKey(name.GetString()!, actualId, publicKey.GetString()!);
            error = null;
            return true;
        }
        catch (JsonException e)
        {
            error = $"the trust store entry {path} is damaged: {e.Message}";
            return false;
        }
        catch (DriverPackageException e)
        {
            error = $"the trust store entry {path} is damaged: {e.Message}";
            return false;
        }
    }

    internal static void WriteAtomically(string path, byte[] content)
    {
        string temporary = path + ".tmp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        File.WriteAllBytes(temporary, content);
        File.Move(temporary, path, overwrite: true);
    }
}
