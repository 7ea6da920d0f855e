using Palisade.Kernel.Drivers;

namespace Palisade.Cli.Tests;

public sealed class TrustCommandTests : IDisposable
{
    private readonly PackageWorkspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    private string PublicKeyFile()
    {
        string path = Path.Combine(_workspace.Root, "contoso.pub");
        File.WriteAllText(path, SigningKeys.ExportPublicPem(_workspace.VendorKey));
        return path;
    }

    [Fact]
    public void Added_key_is_listed_with_its_name_and_key_id()
    {
        ProcessResult added = ProcessRunner.Palisade("trust", "add", PublicKeyFile(), "--name", "contoso-signing", "--home", _workspace.Home);

        ProcessResult listed = ProcessRunner.Palisade("trust", "list", "--home", _workspace.Home);

        Assert.Equal(0, added.ExitCode);
        Assert.Equal($"trusted contoso-signing ({_workspace.VendorKeyId})", added.Stdout.Trim());
        Assert.Equal(0, listed.ExitCode);
        Assert.Matches($@"contoso-signing\s+{_workspace.VendorKeyId}", listed.Stdout);
    }

    [Fact]
    public void Key_name_defaults_to_the_file_name_without_pub()
    {
        ProcessRunner.Palisade("trust", "add", PublicKeyFile(), "--home", _workspace.Home);

        Assert.Equal("contoso", Assert.Single(_workspace.Trust.List()).Name);
    }

    [Fact]
    public void Removed_key_is_no_longer_listed()
    {
        ProcessRunner.Palisade("trust", "add", PublicKeyFile(), "--home", _workspace.Home);

        ProcessResult removed = ProcessRunner.Palisade("trust", "remove", _workspace.VendorKeyId, "--home", _workspace.Home);
        ProcessResult listed = ProcessRunner.Palisade("trust", "list", "--home", _workspace.Home);

        Assert.Equal(0, removed.ExitCode);
        Assert.Contains("removed contoso", removed.Stdout, StringComparison.Ordinal);
        Assert.Contains("no trusted keys", listed.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Removing_an_unknown_key_fails_on_stderr()
    {
        ProcessResult result = ProcessRunner.Palisade("trust", "remove", "nobody", "--home", _workspace.Home);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("no trusted key has the name or key id \"nobody\"", result.Stderr, StringComparison.Ordinal);
        Assert.Empty(result.Stdout);
    }

    [Fact]
    public void Adding_a_file_that_is_not_a_key_fails_on_stderr()
    {
        string path = Path.Combine(_workspace.Root, "junk.pub");
        File.WriteAllText(path, "junk");

        ProcessResult result = ProcessRunner.Palisade("trust", "add", path, "--home", _workspace.Home);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("is not an ECDSA public key", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Palisade_home_environment_variable_locates_the_store_when_no_home_is_given()
    {
        var environment = new Dictionary<string, string?> { ["PALISADE_HOME"] = _workspace.Home };

        ProcessResult result = ProcessRunner.Palisade(environment, "trust", "add", PublicKeyFile());

        Assert.Equal(0, result.ExitCode);
        Assert.NotNull(_workspace.Trust.Find(_workspace.VendorKeyId));
    }
}
