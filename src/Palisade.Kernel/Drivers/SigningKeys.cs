// ECDSA P-256 keys for driver signing: generation, PEM import/export and the key id that names a key in a
// signature and in the trust store.
using System.Security.Cryptography;

namespace Palisade.Kernel.Drivers;

/// <summary>Key handling for driver package signatures.</summary>
internal static class SigningKeys
{
    /// <summary>The suffix of the public key file that <c>palisade driver keygen</c> writes next to the private key.</summary>
    public const string PublicKeySuffix = ".pub";

    private const string P256Oid = "1.2.840.10045.3.1.7";
    private const int KeyIdBytes = 8;

    /// <summary>Creates a new P-256 key pair.</summary>
    public static ECDsa Generate() => ECDsa.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>
    /// The key id: the first 8 bytes of the SHA-256 of the public key's SubjectPublicKeyInfo (DER), as 16 lowercase
    /// hex digits. It only selects a key; the signature check uses the full key from the trust store.
    /// </summary>
    public static string KeyId(ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        byte[] hash = SHA256.HashData(key.ExportSubjectPublicKeyInfo());
        return Convert.ToHexStringLower(hash.AsSpan(0, KeyIdBytes));
    }

    /// <summary>True when <paramref name="text"/> has the form of a key id (16 lowercase hex digits).</summary>
    public static bool IsKeyId(string text)
    {
        if (text.Length != KeyIdBytes * 2)
        {
            return false;
        }

        foreach (char c in text)
        {
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The private key as PKCS#8 PEM ("PRIVATE KEY").</summary>
    public static string ExportPrivatePem(ECDsa key) => key.ExportPkcs8PrivateKeyPem();

    /// <summary>The public key as SubjectPublicKeyInfo PEM ("PUBLIC KEY").</summary>
    public static string ExportPublicPem(ECDsa key) => key.ExportSubjectPublicKeyInfoPem();

    /// <summary>Imports a private signing key from PEM text.</summary>
    /// <exception cref="DriverPackageException">The text is not a P-256 private key.</exception>
    public static ECDsa ImportPrivatePem(string pem, string source)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            _ = key.ExportParameters(includePrivateParameters: true);
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new DriverPackageException($"{source} is not an ECDSA private key in PEM form: {e.Message}", e);
        }

        RequireP256(key, source);
        return key;
    }

    /// <summary>Imports a public key from PEM text; a private key's PEM is accepted but only its public half is kept.</summary>
    /// <exception cref="DriverPackageException">The text is not a P-256 key.</exception>
    public static ECDsa ImportPublicPem(string pem, string source)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            byte[] spki = key.ExportSubjectPublicKeyInfo();
            key.Dispose();
            key = ECDsa.Create();
            key.ImportSubjectPublicKeyInfo(spki, out _);
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new DriverPackageException($"{source} is not an ECDSA public key in PEM form: {e.Message}", e);
        }

        RequireP256(key, source);
        return key;
    }

    private static void RequireP256(ECDsa key, string source)
    {
        ECCurve curve = key.ExportParameters(includePrivateParameters: false).Curve;
        bool isP256 = key.KeySize == 256
            && (curve.Oid?.Value == P256Oid || curve.Oid?.FriendlyName is "nistP256" or "ECDSA_P256" or "prime256v1" or "secp256r1");
        if (!isP256)
        {
            key.Dispose();
            throw new DriverPackageException($"{source} is an ECDSA key on another curve; driver signing uses P-256.");
        }
    }
}
