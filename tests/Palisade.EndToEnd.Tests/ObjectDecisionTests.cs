namespace Palisade.EndToEnd.Tests;

/// <summary>
/// Drivers decide on what Linux resolves, not on the text a guest wrote: the sample antivirus scans every readable
/// regular file however it is named or reached (it skips objects by type, never by path prefix), and the sample
/// self-protection holds whatever spelling or link leads to its folder, and whatever call tries to change a file in it.
/// </summary>
public sealed class ObjectDecisionTests : IDisposable
{
    private const string Eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    private readonly Parity _p = new();
    private readonly string _fsops = Parity.Probe("fsops");
    private readonly string _product;
    private readonly string[] _selfProtect;

    public ObjectDecisionTests()
    {
        File.WriteAllText(Path.Combine(_p.Guest, "eicar.com"), Eicar);
        _product = Path.Combine(_p.Guest, "product");
        Directory.CreateDirectory(Path.Combine(_product, "bin"));
        File.WriteAllText(Path.Combine(_product, "bin", "tool"), "original\n");
        File.CreateSymbolicLink(Path.Combine(_p.Guest, "link"), _product);
        Directory.CreateDirectory(Path.Combine(_p.Guest, "other"));
        _selfProtect = ["--driver", PalisadeRun.Driver("selfprotect"), "--param", "selfprotect.files=" + _product, "--param", "selfprotect.processes=/nonexistent/product/"];
    }

    public void Dispose() => _p.Dispose();

    private string[] Antivirus => ["--driver", PalisadeRun.Driver("antivirus")];

    [GuestFact("/bin/cat")]
    public void The_antivirus_scans_a_file_named_through_dev_dotdot()
    {
        ProcessResult run = _p.UnderPalisade($"cat /dev/..{Path.Combine(_p.Guest, "eicar.com")}", Antivirus);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Permission denied", run.Stderr, StringComparison.Ordinal);
    }

    [GuestFact("/bin/cat")]
    public void The_antivirus_scans_a_file_named_through_proc_dotdot()
    {
        ProcessResult run = _p.UnderPalisade($"cat /proc/..{Path.Combine(_p.Guest, "eicar.com")}", Antivirus);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Permission denied", run.Stderr, StringComparison.Ordinal);
    }

    [GuestFact("python3")]
    public void The_antivirus_scans_an_O_PATH_descriptor_reopened_for_reading_through_proc_self_fd()
    {
        ProcessResult run = _p.UnderPalisade(
            "python3 -c 'import os; fd = os.open(\"eicar.com\", os.O_PATH); print(open(\"/proc/self/fd/%d\" % fd).read())'", Antivirus);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("PermissionError", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("EICAR", run.Stdout, StringComparison.Ordinal);
    }

    [GuestFact("/bin/sh", "/bin/cat")]
    public void The_antivirus_scans_a_write_only_descriptor_reopened_for_reading()
    {
        ProcessResult run = _p.UnderPalisade("exec 5>>eicar.com; cat /dev/fd/5", Antivirus);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Permission denied", run.Stderr, StringComparison.Ordinal);
    }

    [GuestFact("/bin/cat")]
    public void The_antivirus_still_reads_through_devices_it_does_not_scan()
    {
        ProcessResult run = _p.UnderPalisade("head -c 4 /dev/zero | od -An -c", Antivirus);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("  \\0  \\0  \\0  \\0\n", run.Stdout);
    }

    [GuestTheory("/bin/sh")]
    [InlineData("product/bin/tool")]
    [InlineData("product/../product/bin/tool")]
    [InlineData("product//bin//tool")]
    [InlineData("product/./bin/./tool")]
    [InlineData("link/bin/tool")]
    [InlineData("other/../link/bin/../bin/tool")]
    public void Self_protection_holds_whatever_spelling_names_the_protected_file(string spelling)
    {
        ProcessResult run = _p.UnderPalisade($"echo hacked > {spelling}", _selfProtect);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Equal("original\n", File.ReadAllText(Path.Combine(_product, "bin", "tool")));
    }

    [GuestTheory]
    [InlineData("chmod product/bin/tool 777")]
    [InlineData("fchmod product/bin/tool 777")]
    [InlineData("chown product/bin/tool 1000 1000")]
    [InlineData("fchown link/bin/tool 1000 1000")]
    [InlineData("truncate product/bin/tool 0")]
    [InlineData("utimens product/./bin/tool")]
    [InlineData("futimens product/bin/tool")]
    [InlineData("setxattr product/bin/tool")]
    [InlineData("fsetxattr product/bin/tool")]
    [InlineData("link product/bin/tool other/alias")]
    [InlineData("link other/../eicar.com product/bin/planted")]
    [InlineData("exchange other product")]
    [InlineData("rename product/bin/tool other/tool")]
    [InlineData("mknod product/bin/fifo")]
    [InlineData("mkdir link/bin/new")]
    [InlineData("symlink product/bin/evil /etc/passwd")]
    [InlineData("unlink product//bin/tool")]
    public void Self_protection_refuses_every_call_that_would_change_its_folder(string call)
    {
        string before = Tree();

        ProcessResult run = _p.UnderPalisade($"{_fsops} {call}", _selfProtect);

        Assert.Equal(0, run.ExitCode);
        Assert.EndsWith(" EACCES\n", run.Stdout, StringComparison.Ordinal);
        Assert.Equal(before, Tree());
    }

    [GuestTheory]
    [InlineData("ftruncate-fd 7 0")]
    [InlineData("punch-fd 7")]
    [InlineData("fchmod-fd 7 777")]
    public void Self_protection_refuses_changes_through_a_descriptor_opened_before_the_run(string call)
    {
        string before = Tree();

        // The shell opens the protected file before palisade starts: the guest inherits a writable descriptor.
        ProcessResult run = _p.Run.Exec("/bin/sh", ["-c", $"exec 7<>{Path.Combine(_product, "bin", "tool")}; "
            + $"'{ProcessRunner.DotnetHost}' '{ProcessRunner.PalisadeDll}' run {string.Join(' ', _selfProtect)} -- {_fsops} {call}"], _p.Guest);

        Assert.Equal(0, run.ExitCode);
        Assert.EndsWith(" EACCES\n", run.Stdout, StringComparison.Ordinal);
        Assert.Equal(before, Tree());
    }

    /// <summary>The protected folder as it is: names, modes, owners, times and content.</summary>
    private string Tree()
    {
        var lines = new List<string>();
        foreach (string entry in Directory.EnumerateFileSystemEntries(_product, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var info = new FileInfo(entry);
            ProcessResult stat = ProcessRunner.Run("stat", ["-c", "%n %a %u:%g %Y %s", entry], "/");
            lines.Add(stat.Stdout.Trim() + (info.Attributes.HasFlag(FileAttributes.Directory) ? "" : " " + File.ReadAllText(entry).Trim()));
        }

        return string.Join('\n', lines);
    }
}
