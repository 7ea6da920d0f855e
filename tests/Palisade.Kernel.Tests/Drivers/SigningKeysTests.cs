using System.Security.Cryptography;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Tests.Drivers;

public sealed class SigningKeysTests
{
    [Fact]
    public void Exported_pair_signs_and_verifies_after_a_round_trip_through_pem()
    {
        using ECDsa generated = SigningKeys.Generate();
        using ECDsa privateKey = SigningKeys.ImportPrivatePem(SigningKeys.ExportPrivatePem(generated), "private");
        using ECDsa publicKey = SigningKeys.ImportPublicPem(SigningKeys.ExportPublicPem(generated), "public");
        byte[] data = "driver package statement"u8.ToArray();

        byte[] signature = privateKey.SignData(data, HashAlgorithmName.SHA256);

        Assert.True(publicKey.VerifyData(data, signature, HashAlgorithmName.SHA256));
    }

    [Fact]
    public void Key_id_is_the_same_for_the_private_and_the_public_half()
    {
        using ECDsa generated = SigningKeys.Generate();
        using ECDsa publicKey = SigningKeys.ImportPublicPem(SigningKeys.ExportPublicPem(generated), "public");

        Assert.Equal(SigningKeys.KeyId(generated), SigningKeys.KeyId(publicKey));
        Assert.True(SigningKeys.IsKeyId(SigningKeys.KeyId(generated)));
    }

    [Fact]
    public void Public_key_cannot_be_used_as_a_signing_key()
    {
        using ECDsa generated = SigningKeys.Generate();

        var e = Assert.Throws<DriverPackageException>(() => SigningKeys.ImportPrivatePem(SigningKeys.ExportPublicPem(generated), "vendor.pub"));
        Assert.Contains("vendor.pub is not an ECDSA private key", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Key_on_another_curve_is_refused()
    {
        using ECDsa p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);

        var e = Assert.Throws<DriverPackageException>(() => SigningKeys.ImportPublicPem(p384.ExportSubjectPublicKeyInfoPem(), "p384.pub"));
        Assert.Contains("driver signing uses P-256", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Text_that_is_not_pem_is_refused()
    {
        var e = Assert.Throws<DriverPackageException>(() => SigningKeys.ImportPublicPem("not a key", "junk.pub"));
        Assert.Contains("junk.pub is not an ECDSA public key", e.Message, StringComparison.Ordinal);
    }
}
