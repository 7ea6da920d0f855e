using System.Security.Cryptography;
using Palisade.Kernel.Drivers;

namespace Palisade.Cli.Tests;

public sealed class DriverCommandTests : IDisposable
{
    private readonly PackageWorkspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    private string KeyPath => Path.Combine(_workspace.Root, "vendor.key");

    private void Keygen() => Assert.Equal(0, ProcessRunner.Palisade("driver", "keygen", "--out", KeyPath).ExitCode);

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Keygen_writes_an_owner_only_private_key_and_its_public_key()
    {
        ProcessResult result = ProcessRunner.Palisade("driver", "keygen", "--out", KeyPath);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyPath));
        using ECDsa privateKey = SigningKeys.ImportPrivatePem(File.ReadAllText(KeyPath), KeyPath);
        using ECDsa publicKey = SigningKeys.ImportPublicPem(File.ReadAllText(KeyPath + ".pub"), KeyPath + ".pub");
        Assert.Equal(SigningKeys.KeyId(privateKey), SigningKeys.KeyId(publicKey));
        Assert.Contains("key id:      " + SigningKeys.KeyId(publicKey), result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Keygen_refuses_to_overwrite_an_existing_key_on_stderr()
    {
        Keygen();
        string before = File.ReadAllText(KeyPath);

        ProcessResult result = ProcessRunner.Palisade("driver", "keygen", "--out", KeyPath);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("already exists; use --force", result.Stderr, StringComparison.Ordinal);
        Assert.Empty(result.Stdout);
        Assert.Equal(before, File.ReadAllText(KeyPath));
    }

    [Fact]
    public void Signed_package_verifies_against_a_key_trusted_with_the_command_and_prints_the_signer()
    {
        Keygen();
        string package = _workspace.CreatePackage();
        Assert.Equal(0, ProcessRunner.Palisade("trust", "add", KeyPath + ".pub", "--name", "vendor", "--home", _workspace.Home).ExitCode);
        Assert.Equal(0, ProcessRunner.Palisade("driver", "sign", package, "--key", KeyPath).ExitCode);

        ProcessResult result = ProcessRunner.Palisade("driver", "verify", package, "--home", _workspace.Home);

        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"signer:  vendor \([0-9a-f]{16}\)", result.Stdout);
        Assert.Contains("result:  valid", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_of_a_tampered_package_reports_it_on_stderr_with_exit_code_2()
    {
        Keygen();
        string package = _workspace.CreatePackage();
        ProcessRunner.Palisade("trust", "add", KeyPath + ".pub", "--home", _workspace.Home);
        ProcessRunner.Palisade("driver", "sign", package, "--key", KeyPath);
        PackageWorkspace.FlipOneByte(Path.Combine(package, PackageWorkspace.SampleProject + ".dll"));

        ProcessResult result = ProcessRunner.Palisade("driver", "verify", package, "--home", _workspace.Home);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("result:  Tampered", result.Stderr, StringComparison.Ordinal);
        Assert.Contains(PackageWorkspace.SampleProject + ".dll was changed", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_of_a_package_signed_by_an_untrusted_key_says_so()
    {
        Keygen();
        string package = _workspace.CreatePackage();
        ProcessRunner.Palisade("driver", "sign", package, "--key", KeyPath);

        ProcessResult result = ProcessRunner.Palisade("driver", "verify", package, "--home", _workspace.Home);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("(not trusted)", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("result:  UntrustedSigner", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Sign_with_a_missing_key_file_fails_on_stderr()
    {
        ProcessResult result = ProcessRunner.Palisade("driver", "sign", _workspace.CreatePackage(), "--key", KeyPath);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("palisade: ", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("vendor.key", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Sign_of_a_package_with_an_invalid_manifest_fails_naming_the_property()
    {
        Keygen();
        string package = _workspace.CreatePackage(manifest: PackageWorkspace.Manifest(entryType: "Bad..Type"));

        ProcessResult result = ProcessRunner.Palisade("driver", "sign", package, "--key", KeyPath);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("\"entryType\"", result.Stderr, StringComparison.Ordinal);
    }
}
