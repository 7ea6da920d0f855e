using System.Security.Cryptography;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Tests.Drivers;

public sealed class TrustStoreTests : IDisposable
{
    private readonly PackageWorkspace workspace = new();

    public void Dispose() => workspace.Dispose();

    private static string NewPublicKey()
    {
        using ECDsa key = SigningKeys.Generate();
        return SigningKeys.ExportPublicPem(key);
    }

    [Fact]
    public void Missing_store_folder_is_an_empty_store()
    {
        Assert.Empty(workspace.Trust.List());
        Assert.False(Directory.Exists(workspace.Trust.Directory));
    }

    [Fact]
    public void Added_keys_are_listed_by_name_with_their_key_ids()
    {
        TrustedKey zeta = workspace.Trust.Add(NewPublicKey(), "zeta", "zeta.pub");
        TrustedKey alpha = workspace.Trust.Add(NewPublicKey(), "alpha", "alpha.pub");

        IReadOnlyList<TrustedKey> keys = workspace.Trust.List();

        Assert.Equal(["alpha", "zeta"], keys.Select(k => k.Name));
        Assert.Equal([alpha.KeyId, zeta.KeyId], keys.Select(k => k.KeyId));
    }

    [Fact]
    public void Added_key_is_found_by_its_key_id()
    {
        TrustedKey added = workspace.TrustVendor();

        Assert.Equal(added, workspace.Trust.Find(workspace.VendorKeyId));
    }

    [Fact]
    public void Private_key_pem_is_stored_as_its_public_half_only()
    {
        workspace.Trust.Add(SigningKeys.ExportPrivatePem(workspace.VendorKey), "vendor", "vendor.key");

        string stored = File.ReadAllText(Path.Combine(workspace.Trust.Directory, workspace.VendorKeyId + ".json"));
        Assert.Contains("BEGIN PUBLIC KEY", stored, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE", stored, StringComparison.Ordinal);
    }

    [Fact]
    public void Trusting_the_same_key_under_the_same_name_again_is_accepted_and_changes_nothing()
    {
        TrustedKey first = workspace.TrustVendor();
        string pem = SigningKeys.ExportPublicPem(workspace.VendorKey);
        TrustedKey again = workspace.Trust.Add(pem, "test-vendor", "again.pub");
        Assert.Equal(first.KeyId, again.KeyId);
        Assert.Single(workspace.Trust.List(), k => k.KeyId == first.KeyId);
    }

    [Fact]
    public void Key_already_trusted_is_refused_naming_the_existing_entry()
    {
        workspace.TrustVendor();

        var e = Assert.Throws<DriverPackageException>(() => workspace.Trust.Add(SigningKeys.ExportPublicPem(workspace.VendorKey), "again", "again.pub"));
        Assert.Contains("already trusted, as \"test-vendor\"", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Name_already_in_use_is_refused()
    {
        workspace.Trust.Add(NewPublicKey(), "vendor", "a.pub");

        var e = Assert.Throws<DriverPackageException>(() => workspace.Trust.Add(NewPublicKey(), "vendor", "b.pub"));
        Assert.Contains("already used", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Name_that_looks_like_a_key_id_is_refused()
    {
        var e = Assert.Throws<DriverPackageException>(() => workspace.Trust.Add(NewPublicKey(), "0123456789abcdef", "a.pub"));
        Assert.Contains("looks like a key id", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Remove_by_name_forgets_the_key()
    {
        workspace.TrustVendor();

        TrustedKey removed = workspace.Trust.Remove("test-vendor");

        Assert.Equal(workspace.VendorKeyId, removed.KeyId);
        Assert.Empty(workspace.Trust.List());
        Assert.Null(workspace.Trust.Find(workspace.VendorKeyId));
    }

    [Fact]
    public void Remove_by_key_id_forgets_the_key()
    {
        workspace.TrustVendor();

        TrustedKey removed = workspace.Trust.Remove(workspace.VendorKeyId);

        Assert.Equal("test-vendor", removed.Name);
        Assert.Empty(workspace.Trust.List());
    }

    [Fact]
    public void Remove_of_an_unknown_key_is_refused()
    {
        var e = Assert.Throws<DriverPackageException>(() => workspace.Trust.Remove("nobody"));
        Assert.Contains("no trusted key has the name or key id \"nobody\"", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Entry_copied_under_another_key_id_is_not_trusted_for_that_id()
    {
        workspace.TrustVendor();
        using ECDsa other = SigningKeys.Generate();
        string otherId = SigningKeys.KeyId(other);
        File.Copy(Path.Combine(workspace.Trust.Directory, workspace.VendorKeyId + ".json"), Path.Combine(workspace.Trust.Directory, otherId + ".json"));

        Assert.Null(workspace.Trust.Find(otherId));
        var e = Assert.Throws<DriverPackageException>(() => workspace.Trust.List());
        Assert.Contains("is damaged", e.Message, StringComparison.Ordinal);
    }
}
