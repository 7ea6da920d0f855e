// The detached signature of a driver package (signature.json at the package root) and the two operations on it:
// signing a package folder with a private key, and verifying a package snapshot against the trust store.
//
// signature.json:
//   { "format": "palisade-driver-signature-v1", "algorithm": "ECDSA-P256-SHA256", "keyId": "<16 hex>",
//     "files": [ { "path": "manifest.json", "sha256": "<64 hex>" }, … ],   // sorted, as in the statement
//     "signature": "<base64 DER ECDSA signature over SHA-256 of PackageDigest.FormatStatement(files)>" }
// The file list is carried so that a refusal can say which file was added, removed or changed; the check is still
// exactly "the signature verifies over the statement of the package as it is now".
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Palisade.Kernel.Drivers;

/// <summary>The result of checking a package's signature.</summary>
internal enum SignatureOutcome
{
    /// <summary>Signed by a trusted key, and every file is exactly as signed.</summary>
    Valid,

    /// <summary>The package has no signature.json.</summary>
    Unsigned,

    /// <summary>signature.json cannot be parsed or uses an unknown format or algorithm.</summary>
    Malformed,

    /// <summary>The signing key is not in the trust store.</summary>
    UntrustedSigner,

    /// <summary>The signature does not verify: a file or the manifest was changed, added or removed after signing,
    /// or signature.json itself was altered.</summary>
    Tampered,
}

/// <summary>What <see cref="PackageSignature.Verify"/> found.</summary>
/// <param name="Outcome">The result.</param>
/// <param name="KeyId">The key id named by the signature, when it could be read.</param>
/// <param name="Signer">The trusted key, when the key id is in the trust store.</param>
/// <param name="Message">A sentence for the operator, naming the file or key concerned.</param>
internal sealed record SignatureVerification(SignatureOutcome Outcome, string? KeyId, TrustedKey? Signer, string Message)
{
    /// <summary>True when the signature is valid and trusted.</summary>
    public bool IsValid => Outcome == SignatureOutcome.Valid;
}

/// <summary>Signs and verifies driver packages.</summary>
internal static class PackageSignature
{
    /// <summary>The value of "format" in signature.json.</summary>
    public const string Format = "palisade-driver-signature-v1";

    /// <summary>The value of "algorithm" in signature.json.</summary>
    public const string Algorithm = "ECDSA-P256-SHA256";

    private const int MaxReportedDifferences = 5;

    /// <summary>Signs a package folder: validates its manifest, then writes signature.json over every other file.</summary>
    /// <param name="packageDirectory">The package folder.</param>
    /// <param name="privateKey">A P-256 private key.</param>
    /// <returns>The key id of the signer.</returns>
    /// <exception cref="DriverPackageException">The folder is not a readable package or its manifest is invalid.</exception>
    public static string Sign(string packageDirectory, ECDsa privateKey)
    {
        ArgumentNullException.ThrowIfNull(packageDirectory);
        ArgumentNullException.ThrowIfNull(privateKey);
        if (!DriverPackage.TryRead(packageDirectory, out DriverPackage? package, out string? error))
        {
            throw new DriverPackageException(error);
        }

        PackageFile manifestFile = package.Find(DriverManifest.FileName)
            ?? throw new DriverPackageException($"{package.Directory} has no {DriverManifest.FileName}; a package needs one at its root.");
        if (!DriverManifest.TryParse(manifestFile.Content, out DriverManifest? manifest, out error))
        {
            throw new DriverPackageException(error);
        }

        if (package.Find(manifest.Assembly) is null)
        {
            throw new DriverPackageException($"the manifest names the assembly {manifest.Assembly}, which is not in {package.Directory}.");
        }

        List<SignedFile> files = PackageDigest.Describe(package);
        byte[] signature = privateKey.SignData(
            PackageDigest.FormatStatement(files), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        string keyId = SigningKeys.KeyId(privateKey);
        TrustStore.WriteAtomically(Path.Combine(package.Directory, DriverPackage.SignatureFileName), Serialize(keyId, files, signature));
        return keyId;
    }

    /// <summary>Verifies a package snapshot against a trust store.</summary>
    /// <param name="package">The package as read.</param>
    /// <param name="trustStore">The keys whose signatures are accepted.</param>
    /// <returns>The outcome; never throws for a bad package.</returns>
    public static SignatureVerification Verify(DriverPackage package, TrustStore trustStore)
    {
        ArgumentNullException.ThrowIfNull(package);
        ArgumentNullException.ThrowIfNull(trustStore);
        if (package.Signature is null)
        {
            return new(SignatureOutcome.Unsigned, null, null,
                $"the package {package.Directory} is not signed: it has no {DriverPackage.SignatureFileName}.");
        }

        if (!TryParse(package.Signature, out string? keyId, out List<SignedFile>? signedFiles, out byte[]? signature, out string? error))
        {
            return new(SignatureOutcome.Malformed, null, null, $"{DriverPackage.SignatureFileName} is malformed: {error}");
        }

        TrustedKey? signer = trustStore.Find(keyId);
        if (signer is null)
        {
            return new(SignatureOutcome.UntrustedSigner, keyId, null,
                $"the package is signed by key {keyId}, which is not in the trust store ({trustStore.Directory}).");
        }

        bool signatureHolds;
        using (ECDsa key = signer.CreateKey())
        {
            signatureHolds = key.VerifyData(
                PackageDigest.FormatStatement(signedFiles), signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        }

        if (!signatureHolds)
        {
            return new(SignatureOutcome.Tampered, keyId, signer,
                $"the package has been tampered with: the signature by \"{signer.Name}\" ({keyId}) does not match the signed file list in {DriverPackage.SignatureFileName}.");
        }

        string? differences = Compare(signedFiles, package.Files);
        if (differences is not null)
        {
            return new(SignatureOutcome.Tampered, keyId, signer,
                $"the package has been tampered with since \"{signer.Name}\" ({keyId}) signed it: {differences}.");
        }

        return new(SignatureOutcome.Valid, keyId, signer, $"signed by \"{signer.Name}\" ({keyId}); all {signedFiles.Count} files match.");
    }

    // Both lists are sorted by path, so one merge pass finds every added, removed and changed file.
    private static string? Compare(List<SignedFile> signed, IReadOnlyList<PackageFile> actual)
    {
        var report = new List<string>();
        int total = 0;
        int i = 0;
        int j = 0;
        while (i < signed.Count || j < actual.Count)
        {
            int order = i == signed.Count ? 1 : j == actual.Count ? -1 : PackageDigest.ComparePaths(signed[i].Path, actual[j].Path);
            string? difference = null;
            if (order < 0)
            {
                difference = signed[i++].Path + " was removed";
            }
            else if (order > 0)
            {
                difference = actual[j++].Path + " was added";
            }
            else
            {
                if (!signed[i].Sha256.AsSpan().SequenceEqual(actual[j].Sha256))
                {
                    difference = actual[j].Path + " was changed";
                }

                i++;
                j++;
            }

            if (difference is not null && ++total <= MaxReportedDifferences)
            {
                report.Add(difference);
            }
        }

        if (total == 0)
        {
            return null;
        }

        string text = string.Join(", ", report);
        return total > MaxReportedDifferences ? $"{text} and {total - MaxReportedDifferences} more" : text;
    }

    private static byte[] Serialize(string keyId, List<SignedFile> files, byte[] signature)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteString("format", Format);
            writer.WriteString("algorithm", Algorithm);
            writer.WriteString("keyId", keyId);
            writer.WriteStartArray("files");
            foreach (SignedFile file in files)
            {
                writer.WriteStartObject();
                writer.WriteString("path", file.Path);
                writer.WriteString("sha256", Convert.ToHexStringLower(file.Sha256));
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteBase64String("signature", signature);
            writer.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    private static bool TryParse(
        byte[] json,
        [NotNullWhen(true)] out string? keyId,
        [NotNullWhen(true)] out List<SignedFile>? files,
        [NotNullWhen(true)] out byte[]? signature,
        [NotNullWhen(false)] out string? error)
    {
        keyId = null;
        files = null;
        signature = null;
        try
        {
            using JsonDocument document = JsonDocument.Parse(json);
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                error = "it must contain a JSON object.";
                return false;
            }

            if (!TryGetString(root, "format", out string? format, out error)
                || !TryGetString(root, "algorithm", out string? algorithm, out error)
                || !TryGetString(root, "keyId", out string? id, out error)
                || !TryGetString(root, "signature", out string? signatureText, out error))
            {
                return false;
            }

            if (format != Format)
            {
                error = $"its format is \"{format}\"; this kernel reads \"{Format}\".";
                return false;
            }

            if (algorithm != Algorithm)
            {
                error = $"its algorithm is \"{algorithm}\"; this kernel accepts \"{Algorithm}\".";
                return false;
            }

            if (!SigningKeys.IsKeyId(id))
            {
                error = $"its keyId \"{id}\" is not 16 lowercase hex digits.";
                return false;
            }

            if (!root.TryGetProperty("files", out JsonElement list) || list.ValueKind != JsonValueKind.Array)
            {
                error = "it has no \"files\" array.";
                return false;
            }

            var parsed = new List<SignedFile>(list.GetArrayLength());
            foreach (JsonElement item in list.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object
                    || !TryGetString(item, "path", out string? path, out error)
                    || !TryGetString(item, "sha256", out string? hash, out error))
                {
                    error = "every entry of \"files\" must be an object with string properties \"path\" and \"sha256\".";
                    return false;
                }

                if (!DriverPackage.IsValidPath(path) || hash.Length != 64 || !IsLowerHex(hash))
                {
                    error = $"the entry for \"{path}\" has an invalid path or SHA-256.";
                    return false;
                }

                if (parsed.Count > 0 && PackageDigest.ComparePaths(parsed[^1].Path, path) >= 0)
                {
                    error = "\"files\" is not sorted by path or repeats a path.";
                    return false;
                }

                parsed.Add(new SignedFile(path, Convert.FromHexString(hash)));
            }

            signature = Convert.FromBase64String(signatureText);
            keyId = id;
            files = parsed;
            error = null;
            return true;
        }
        catch (JsonException e)
        {
            error = "it is not valid JSON: " + e.Message;
            return false;
        }
        catch (FormatException)
        {
            error = "its signature is not valid base64.";
            return false;
        }
    }

    private static bool TryGetString(JsonElement element, string property, [NotNullWhen(true)] out string? value, [NotNullWhen(false)] out string? error)
    {
        if (element.TryGetProperty(property, out JsonElement found) && found.ValueKind == JsonValueKind.String)
        {
            value = found.GetString()!;
            error = null;
            return true;
        }

        value = null;
        error = $"it has no string property \"{property}\".";
        return false;
    }

    private static bool IsLowerHex(string text)
    {
        foreach (char c in text)
        {
            if (!char.IsAsciiDigit(c) && !char.IsAsciiHexDigitLower(c))
            {
                return false;
            }
        }

        return true;
    }
}
