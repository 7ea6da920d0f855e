using System.Security.Cryptography;
using System.Text;
using Palisade.Api;
using Palisade.Drivers.AppControl;

namespace Palisade.Drivers.Tests;

public sealed class AppControlTests : IDisposable
{
    private readonly DriverHarness _h = new();
    private readonly AppControlDriver _driver = new();

    public void Dispose() => _h.Dispose();

    private void Start(string mode, string allowList) =>
        Assert.Equal(Status.Success, _h.Start(_driver, "appcontrol", ("mode", mode), ("allowlist", _h.WriteFile("allow.list", allowList))));

    private static string Sha256Of(string content) => Convert.ToHexString(SHA256.HashData(Encoding.ASCII.GetBytes(content)));

    [Fact]
    public void Enforce_mode_denies_an_image_that_is_not_on_the_list_and_reports_it()
    {
        Start("enforce", "path /usr/bin/*\n");
        string tool = _h.WriteFile("tool", "#!/bin/sh\necho tool\n");

        Assert.Equal(Status.AccessDenied, _h.Exec(500, tool));

        DriverEvent blocked = Assert.Single(_h.Events("blocked"));
        Assert.Equal(500, blocked.ProcessId);
        Assert.Contains(Sha256Of("#!/bin/sh\necho tool\n").ToLowerInvariant(), blocked.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Audit_mode_allows_the_same_image_and_reports_that_it_would_deny_it()
    {
        Start("audit", "path /usr/bin/*\n");
        string tool = _h.WriteFile("tool", "#!/bin/sh\necho tool\n");

        Assert.Equal(Status.Success, _h.Exec(501, tool));

        Assert.StartsWith("would deny " + tool, Assert.Single(_h.Events("audit")).Message, StringComparison.Ordinal);
        Assert.Empty(_h.Events("blocked"));
    }

    [Fact]
    public void A_path_rule_allows_by_location_without_hashing()
    {
        Start("enforce", "path " + _h.Files + "/\n");
        string tool = _h.WriteFile("tool", "#!/bin/sh\n");

        Assert.Equal(Status.Success, _h.Exec(502, tool));
        Assert.Equal(0, _driver.HashCount);
    }

    [Fact]
    public void A_sha256_entry_allows_the_image_by_content_and_the_digest_is_cached()
    {
        const string content = "#!/bin/sh\necho approved\n";
        Start("enforce", "sha256 " + Sha256Of(content) + " approved tool\n");
        string tool = _h.WriteFile("approved", content);

        Assert.Equal(Status.Success, _h.Exec(503, tool));
        Assert.Equal(Status.Success, _h.Exec(504, tool));
        Assert.Equal(1, _driver.HashCount);
    }

    [Fact]
    public void An_allowed_image_rewritten_after_its_digest_was_cached_is_hashed_again_and_denied()
    {
        const string content = "#!/bin/sh\necho approved\n";
        Start("enforce", "sha256 " + Sha256Of(content) + "\n");
        string tool = _h.WriteFile("approved", content);
        Assert.Equal(Status.Success, _h.Exec(505, tool));

        Assert.Equal(Status.Success, _h.Open(tool, FileAccessRights.Write));
        File.WriteAllText(tool, "#!/bin/sh\necho tampered\n");
        Assert.Equal(Status.Success, _h.Cleanup(tool));

        Assert.Equal(Status.AccessDenied, _h.Exec(506, tool));
        Assert.Equal(2, _driver.HashCount);
    }

    [Fact]
    public void An_image_whose_path_names_another_file_than_the_one_about_to_run_is_denied()
    {
        const string content = "#!/bin/sh\necho approved\n";
        Start("enforce", "sha256 " + Sha256Of(content) + "\n");
        string approved = _h.WriteFile("approved", content);
        string other = _h.WriteFile("other", "#!/bin/sh\necho other\n");

        Assert.Equal(Status.AccessDenied, _h.Exec(507, approved, DriverHarness.IdentityOf(other)));
        Assert.Contains("not the image about to run", Assert.Single(_h.Events("blocked")).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/usr/bin/*", "/usr/bin/ls", true)]
    [InlineData("/usr/bin/*", "/usr/bin/x/ls", false)]
    [InlineData("/usr/**", "/usr/lib/x86_64-linux-gnu/ld.so", true)]
    [InlineData("/usr/lib/", "/usr/lib/a/b", true)]
    [InlineData("/usr/lib/", "/usr/lib", false)]
    [InlineData("/usr/libexec/", "/usr/lib/x", false)]
    [InlineData("/bin/l?", "/bin/ls", true)]
    [InlineData("/bin/l?", "/bin/lsx", false)]
    [InlineData("/opt/tool", "/opt/tool", true)]
    [InlineData("/opt/tool", "/opt/tool2", false)]
    [InlineData("/opt/*/bin/run", "/opt/a/bin/run", true)]
    public void Path_patterns_match_as_documented(string pattern, string path, bool expected)
    {
        Assert.Equal(expected, Glob.Matches(pattern, path));
    }

    [Theory]
    [InlineData("sha256 1234", "line 2: a sha256 entry has 64 hex digits")]
    [InlineData("path relative/tool", "line 2: a path entry is one absolute path")]
    [InlineData("hash abc", "line 2: unknown entry \"hash\"")]
    [InlineData("path", "line 2: expected 'sha256 HEX [comment]' or 'path PATTERN'")]
    public void A_bad_allow_list_line_is_refused_with_its_line_number(string line, string expected)
    {
        Assert.False(AllowList.TryParse("path /bin/\n" + line, out _, out string? error));
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_mode_fails_the_load_with_a_clear_message()
    {
        Assert.Equal(Status.InvalidParameter, _h.Start(_driver, "appcontrol", ("mode", "strict"), ("allowlist", _h.WriteFile("allow.list", "path /bin/\n"))));
        Assert.Contains("expected audit or enforce", Assert.Single(_h.Events("config-error")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_driver_registers_an_application_control_product()
    {
        Start("audit", "path /bin/\n");
        Assert.Equal(SecurityProductKind.ApplicationControl, Assert.Single(_h.Kernel.SecurityCenter.List()).Kind);
    }
}
