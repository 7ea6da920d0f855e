using System.Security.Cryptography;
using System.Text;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Tests.Drivers;

public sealed class PackageSignatureTests : IDisposable
{
    private readonly PackageWorkspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    private SignatureVerification Verify(string package)
    {
        Assert.True(DriverPackage.TryRead(package, out DriverPackage? snapshot, out string? error), error);
        return PackageSignature.Verify(snapshot, _workspace.Trust);
    }

    [Fact]
    public void Signed_package_verifies_against_the_trusted_key()
    {
        _workspace.TrustVendor();
        string package = _workspace.CreateSignedPackage();

        SignatureVerification result = Verify(package);

        Assert.Equal(SignatureOutcome.Valid, result.Outcome);
        Assert.Equal("test-vendor", result.Signer?.Name);
        Assert.Equal(_workspace.VendorKeyId, result.KeyId);
    }

    [Fact]
    public void Signature_covers_every_file_of_the_package_and_the_manifest()
    {
        string package = _workspace.CreateSignedPackage();

        string signature = File.ReadAllText(Path.Combine(package, DriverPackage.SignatureFileName));

        foreach (string file in Directory.EnumerateFiles(package))
        {
            string name = Path.GetFileName(file);
            if (name != DriverPackage.SignatureFileName)
            {
                Assert.Contains($"\"path\": \"{name}\"", signature, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void Package_without_signature_is_unsigned()
    {
        _workspace.TrustVendor();

        SignatureVerification result = Verify(_workspace.CreatePackage());

        Assert.Equal(SignatureOutcome.Unsigned, result.Outcome);
        Assert.Contains("is not signed", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Package_signed_by_an_untrusted_key_is_refused_naming_the_key()
    {
        string package = _workspace.CreateSignedPackage();

        SignatureVerification result = Verify(package);

        Assert.Equal(SignatureOutcome.UntrustedSigner, result.Outcome);
        Assert.Contains(_workspace.VendorKeyId, result.Message, StringComparison.Ordinal);
        Assert.Contains("not in the trust store", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void One_byte_changed_in_the_assembly_is_tampering_that_names_the_file()
    {
        _workspace.TrustVendor();
        string package = _workspace.CreateSignedPackage();
        PackageWorkspace.FlipOneByte(Path.Combine(package, PackageWorkspace.SampleProject + ".dll"));

        SignatureVerification result = Verify(package);

        Assert.Equal(SignatureOutcome.Tampered, result.Outcome);
        Assert.Contains(PackageWorkspace.SampleProject + ".dll was changed", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void One_byte_changed_in_the_manifest_is_tampering()
    {
        _workspace.TrustVendor();
        string package = _workspace.CreateSignedPackage();
        string manifest = Path.Combine(package, DriverManifest.FileName);
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace("320000", "320001", StringComparison.Ordinal));

        SignatureVerification result = Verify(package);

        Assert.Equal(SignatureOutcome.Tampered, result.Outcome);
        Assert.Contains("manifest.json was changed", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void File_added_after_signing_is_tampering()
    {
        _workspace.TrustVendor();
        string package = _workspace.CreateSignedPackage();
        Directory.CreateDirectory(Path.Combine(package, "lib"));
        File.WriteAllText(Path.Combine(package, "lib", "extra.dll"), "not signed");

        SignatureVerification result = Verify(package);

        Assert.Equal(SignatureOutcome.Tampered, result.Outcome);
        Assert.Contains("lib/extra.dll was added", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void File_removed_after_signing_is_tampering()
    {
        _workspace.TrustVendor();
        string package = _workspace.CreateSignedPackage();
        File.Delete(Path.Combine(package, "Palisade.TestDrivers.Helper.dll"));

        SignatureVerification result = Verify(package);

        Assert.Equal(SignatureOutcome.Tampered, result.Outcome);
        Assert.Contains("Palisade.TestDrivers.Helper.dll was removed", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void File_list_in_the_signature_rewritten_to_match_a_changed_file_is_tampering()
    {
        _workspace.TrustVendor();
        string package = _workspace.CreateSignedPackage();
        string assembly = Path.Combine(package, PackageWorkspace.SampleProject + ".dll");
        string before = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(assembly)));
        PackageWorkspace.FlipOneByte(assembly);
        string after = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(assembly)));
        string signatureFile = Path.Combine(package, DriverPackage.SignatureFileName);
        File.WriteAllText(signatureFile, File.ReadAllText(signatureFile).Replace(before, after, StringComparison.Ordinal));

        SignatureVerification result = Verify(package);

        Assert.Equal(SignatureOutcome.Tampered, result.Outcome);
        Assert.Contains("does not match the signed file list", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Signature_file_that_is_not_json_is_malformed()
    {
        _workspace.TrustVendor();
        string package = _workspace.CreateSignedPackage();
        File.WriteAllText(Path.Combine(package, DriverPackage.SignatureFileName), "garbage");

        SignatureVerification result = Verify(package);

        Assert.Equal(SignatureOutcome.Malformed, result.Outcome);
        Assert.Contains("signature.json is malformed", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Package_signed_by_another_key_with_a_trusted_key_id_written_in_is_tampering()
    {
        _workspace.TrustVendor();
        string package = _workspace.CreatePackage();
        using ECDsa attacker = SigningKeys.Generate();
        PackageSignature.Sign(package, attacker);
        string signatureFile = Path.Combine(package, DriverPackage.SignatureFileName);
        File.WriteAllText(signatureFile, File.ReadAllText(signatureFile).Replace(SigningKeys.KeyId(attacker), _workspace.VendorKeyId, StringComparison.Ordinal));

        SignatureVerification result = Verify(package);

        Assert.Equal(SignatureOutcome.Tampered, result.Outcome);
    }

    [Fact]
    public void Signing_refuses_a_package_whose_manifest_is_invalid()
    {
        string package = _workspace.CreatePackage(manifest: PackageWorkspace.Manifest(minimumApiVersion: "one"));

        var e = Assert.Throws<DriverPackageException>(() => PackageSignature.Sign(package, _workspace.VendorKey));
        Assert.Contains("\"minimumApiVersion\"", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(package, DriverPackage.SignatureFileName)));
    }

    [Fact]
    public void Signing_refuses_a_package_whose_manifest_names_a_missing_assembly()
    {
        string package = _workspace.CreatePackage(manifest: PackageWorkspace.Manifest(assembly: "Missing.dll"));

        var e = Assert.Throws<DriverPackageException>(() => PackageSignature.Sign(package, _workspace.VendorKey));
        Assert.Contains("Missing.dll, which is not in", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Package_containing_a_symbolic_link_cannot_be_read()
    {
        string package = _workspace.CreatePackage();
        File.CreateSymbolicLink(Path.Combine(package, "link.dll"), "/etc/hostname");

        Assert.False(DriverPackage.TryRead(package, out _, out string? error));
        Assert.Contains("symbolic link, link.dll", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Package_containing_a_fifo_is_refused_instead_of_blocking_the_reader()
    {
        string package = _workspace.CreatePackage();
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [Path.Combine(package, "pipe.dll")]))
        {
            mkfifo.WaitForExit();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        Assert.False(DriverPackage.TryRead(package, out _, out string? error));
        Assert.Contains("pipe.dll, which is not a regular file", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Package_containing_a_file_name_outside_printable_ascii_cannot_be_read()
    {
        string package = _workspace.CreatePackage();
        File.WriteAllText(Path.Combine(package, "caf\u00e9.dll"), "x");

        Assert.False(DriverPackage.TryRead(package, out _, out string? error));
        Assert.Contains("not printable ASCII", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Hidden_files_are_covered_by_the_signature_too()
    {
        _workspace.TrustVendor();
        string package = _workspace.CreateSignedPackage();
        File.WriteAllText(Path.Combine(package, ".hidden"), "added later");

        SignatureVerification result = Verify(package);

        Assert.Equal(SignatureOutcome.Tampered, result.Outcome);
        Assert.Contains(".hidden was added", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Statement_lists_files_sorted_by_path_with_their_sha256()
    {
        byte[] hashA = SHA256.HashData("a"u8);
        byte[] hashB = SHA256.HashData("b"u8);

        byte[] statement = PackageDigest.FormatStatement([new SignedFile("a/x.dll", hashA), new SignedFile("b.dll", hashB)]);

        Assert.Equal(
            $"palisade-driver-package-v1\n{Convert.ToHexStringLower(hashA)} a/x.dll\n{Convert.ToHexStringLower(hashB)} b.dll\n",
            Encoding.ASCII.GetString(statement));
    }
}
