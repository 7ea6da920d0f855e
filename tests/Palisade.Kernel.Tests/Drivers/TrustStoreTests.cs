using System.Security.Cryptography;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Tests.Drivers;

public sealed class TrustStoreTests : IDisposable
{
    private readonly PackageWorkspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    private static string NewPublicKey()
    {
        using ECDsa key = SigningKeys.Generate();
        return SigningKeys.ExportPublicPem(key);
    }

    [Fact]
    public void Missing_store_folder_is_an_empty_store()
    {
        Assert.Empty(_workspace.Trust.List());
        Assert.False(Directory.Exists(_workspace.Trust.Directory));
    }

    [Fact]
    public void Added_keys_are_listed_by_name_with_their_key_ids()
    {
        TrustedKey zeta = _workspace.Trust.Add(NewPublicKey(), "zeta", "zeta.pub");
        TrustedKey alpha = _workspace.Trust.Add(NewPublicKey(), "alpha", "alpha.pub");

        IReadOnlyList<TrustedKey> keys = _workspace.Trust.List();

        Assert.Equal(["alpha", "zeta"], keys.Select(k => k.Name));
        Assert.Equal([alpha.KeyId, zeta.KeyId], keys.Select(k => k.KeyId));
    }

    [Fact]
    public void Added_key_is_found_by_its_key_id()
    {
        TrustedKey added = _workspace.TrustVendor();

        Assert.Equal(added, _workspace.Trust.Find(_workspace.VendorKeyId));
    }

    [Fact]
    public void Private_key_pem_is_stored_as_its_public_half_only()
    {
        _workspace.Trust.Add(SigningKeys.ExportPrivatePem(_workspace.VendorKey), "vendor", "vendor.key");

        string stored = File.ReadAllText(Path.Combine(_workspace.Trust.Directory, _workspace.VendorKeyId + ".json"));
        Assert.Contains("BEGIN PUBLIC KEY", stored, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE", stored, StringComparison.Ordinal);
    }

    [Fact]
    public void Trusting_the_same_key_under_the_same_name_again_is_accepted_and_changes_nothing()
    {
        TrustedKey first = _workspace.TrustVendor();
        string pem = SigningKeys.ExportPublicPem(_workspace.VendorKey);
        TrustedKey again = _workspace.Trust.Add(pem, "test-vendor", "again.pub");
        Assert.Equal(first.KeyId, again.KeyId);
        Assert.Single(_workspace.Trust.List(), k => k.KeyId == first.KeyId);
    }

    [Fact]
    public void Key_already_trusted_is_refused_naming_the_existing_entry()
    {
        _workspace.TrustVendor();

        var e = Assert.Throws<DriverPackageException>(() => _workspace.Trust.Add(SigningKeys.ExportPublicPem(_workspace.VendorKey), "again", "again.pub"));
        Assert.Contains("already trusted, as \"test-vendor\"", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Name_already_in_use_is_refused()
    {
        _workspace.Trust.Add(NewPublicKey(), "vendor", "a.pub");

        var e = Assert.Throws<DriverPackageException>(() => _workspace.Trust.Add(NewPublicKey(), "vendor", "b.pub"));
        Assert.Contains("already used", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Name_that_looks_like_a_key_id_is_refused()
    {
        var e = Assert.Throws<DriverPackageException>(() => _workspace.Trust.Add(NewPublicKey(), "0123456789abcdef", "a.pub"));
        Assert.Contains("looks like a key id", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Remove_by_name_forgets_the_key()
    {
        _workspace.TrustVendor();

        TrustedKey removed = _workspace.Trust.Remove("test-vendor");

        Assert.Equal(_workspace.VendorKeyId, removed.KeyId);
        Assert.Empty(_workspace.Trust.List());
        Assert.Null(_workspace.Trust.Find(_workspace.VendorKeyId));
    }

    [Fact]
    public void Remove_by_key_id_forgets_the_key()
    {
        _workspace.TrustVendor();

        TrustedKey removed = _workspace.Trust.Remove(_workspace.VendorKeyId);

        Assert.Equal("test-vendor", removed.Name);
        Assert.Empty(_workspace.Trust.List());
    }

    [Fact]
    public void Remove_of_an_unknown_key_is_refused()
    {
        var e = Assert.Throws<DriverPackageException>(() => _workspace.Trust.Remove("nobody"));
        Assert.Contains("no trusted key has the name or key id \"nobody\"", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Entry_copied_under_another_key_id_is_not_trusted_for_that_id()
    {
        _workspace.TrustVendor();
        using ECDsa other = SigningKeys.Generate();
        string otherId = SigningKeys.KeyId(other);
        File.Copy(Path.Combine(_workspace.Trust.Directory, _workspace.VendorKeyId + ".json"), Path.Combine(_workspace.Trust.Directory, otherId + ".json"));

        Assert.Null(_workspace.Trust.Find(otherId));
        var e = Assert.Throws<DriverPackageException>(() => _workspace.Trust.List());
        Assert.Contains("is damaged", e.Message, StringComparison.Ordinal);
    }
}
