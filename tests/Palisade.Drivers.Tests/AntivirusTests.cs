using System.Security.Cryptography;
using System.Text;
using Palisade.Api;
using Palisade.Drivers.Antivirus;

namespace Palisade.Drivers.Tests;

public sealed class AntivirusTests : IDisposable
{
    private const string Eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    private readonly DriverHarness _h = new();
    private readonly AntivirusDriver _av = new();

    public void Dispose() => _h.Dispose();

    private void Start(params (string, string)[] parameters) => Assert.Equal(Status.Success, _h.Start(_av, "antivirus", parameters));

    [Fact]
    public void Eicar_file_opened_for_reading_is_denied_with_AccessDenied_and_reported()
    {
        Start();
        string eicar = _h.WriteFile("eicar.com", Eicar);

        Assert.Equal(Status.AccessDenied, _h.Open(eicar, FileAccessRights.Read, pid: 77));

        DriverEvent detection = Assert.Single(_h.Events("detection"));
        Assert.Equal(77, detection.ProcessId);
        Assert.Equal(eicar, detection.Path);
        Assert.Contains(SignatureSet.EicarName, detection.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Eicar_file_opened_for_execution_is_denied_even_when_reads_are_not_scanned()
    {
        Start(("scanOnRead", "false"));
        string eicar = _h.WriteFile("eicar.com", Eicar + "\r\n");

        Assert.Equal(Status.AccessDenied, _h.Open(eicar, FileAccessRights.Execute));
        Assert.Equal(Status.Success, _h.Open(eicar, FileAccessRights.Read));
    }

    [Fact]
    public void The_eicar_string_inside_a_larger_file_is_not_the_test_file()
    {
        Start();
        string file = _h.WriteFile("readme.txt", "The test string is " + Eicar + " and nothing more.");
        Assert.Equal(Status.Success, _h.Open(file));
    }

    [Fact]
    public void Clean_file_is_allowed_and_scanned_only_once()
    {
        Start();
        string clean = _h.WriteFile("clean.txt", "hello, palisade");

        Assert.Equal(Status.Success, _h.Open(clean));
        Assert.Equal(Status.Success, _h.Open(clean));
        Assert.Equal(Status.Success, _h.Open(clean, FileAccessRights.Execute));

        Assert.Equal(1, _av.ScanCount);
        Assert.Empty(_h.Events("detection"));
    }

    [Fact]
    public void Opening_for_write_drops_the_cached_verdict_so_new_content_is_scanned()
    {
        Start();
        string file = _h.WriteFile("doc.txt", "harmless");
        Assert.Equal(Status.Success, _h.Open(file));

        Assert.Equal(Status.Success, _h.Open(file, FileAccessRights.Write));
        File.WriteAllText(file, Eicar);

        Assert.Equal(Status.AccessDenied, _h.Open(file));
        Assert.Equal(2, _av.ScanCount);
    }

    [Fact]
    public void Cleanup_after_a_write_drops_the_cached_verdict_and_reports_what_was_written()
    {
        Start();
        string file = _h.WriteFile("dropper.bin", "harmless");
        Assert.Equal(Status.Success, _h.Open(file));
        File.WriteAllText(file, Eicar);

        Assert.Equal(Status.Success, _h.Cleanup(file));

        Assert.Contains("found after a write", Assert.Single(_h.Events("detection")).Message, StringComparison.Ordinal);
        Assert.Equal(Status.AccessDenied, _h.Open(file));
    }

    [Fact]
    public void A_clean_file_no_one_writes_any_more_is_not_scanned_again_after_its_cleanup()
    {
        Start();
        string file = _h.WriteFile("written.bin", "harmless");

        Assert.Equal(Status.Success, _h.Cleanup(file));
        Assert.Equal(Status.Success, _h.Open(file));

        Assert.Equal(1, _av.ScanCount);
    }

    [Fact]
    public void A_clean_file_still_open_for_writing_at_its_cleanup_is_scanned_again_at_its_next_open()
    {
        Start();
        string file = _h.WriteFile("written.bin", "harmless");
        using (File.Open(file, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            Assert.Equal(Status.Success, _h.Cleanup(file));
        }

        Assert.Equal(Status.Success, _h.Open(file));

        Assert.Equal(2, _av.ScanCount);
    }

    [Fact]
    public void A_sha256_signature_detects_the_whole_file_with_that_digest()
    {
        byte[] malware = Encoding.ASCII.GetBytes("not really malware, but listed by digest");
        string sigs = _h.WriteFile("av.sigs", "# test signatures\nsha256 " + Convert.ToHexString(SHA256.HashData(malware)) + " Test.Digest.A\n");
        Start(("signatures", sigs));
        string file = _h.WriteFile("sample.bin", malware);
        string other = _h.WriteFile("sample2.bin", "not really malware, but listed by digesT");

        Assert.Equal(Status.AccessDenied, _h.Open(file));
        Assert.Equal(Status.Success, _h.Open(other));
        Assert.Contains("Test.Digest.A", Assert.Single(_h.Events("detection")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_hex_pattern_is_found_even_across_the_scanners_chunk_boundary()
    {
        string sigs = _h.WriteFile("av.sigs", "hex deadbeefcafebabe Test.Pattern.B\n");
        Start(("signatures", sigs));
        byte[] content = new byte[200_000];
        byte[] pattern = Convert.FromHexString("deadbeefcafebabe");
        pattern.CopyTo(content, 65536 - 3);
        string file = _h.WriteFile("big.bin", content);

        Assert.Equal(Status.AccessDenied, _h.Open(file));
        Assert.Contains("Test.Pattern.B", Assert.Single(_h.Events("detection")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_signature_line_fails_the_load_with_its_line_number()
    {
        string sigs = _h.WriteFile("av.sigs", "# ok\nsha256 abcd Too.Short\n");

        Assert.Equal(Status.InvalidParameter, _h.Start(_av, "antivirus", ("signatures", sigs)));

        string error = Assert.Single(_h.Events("config-error")).Message;
        Assert.Contains("line 2", error, StringComparison.Ordinal);
        Assert.Contains("64 hex digits", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("scanService", "/tmp/spool", "expected the name of the scanning service's port")]
    [InlineData("asyncScan", "sometimes", "expected true or false")]
    [InlineData("holdTime", "0", "from 1 to 600")]
    [InlineData("holdTime", "601", "from 1 to 600")]
    [InlineData("onTimeout", "maybe", "expected allow or deny")]
    [InlineData("verdictCache", "3", "from 4 to 4194304")]
    [InlineData("verdictCache", "many", "from 4 to 4194304")]
    public void A_bad_holding_parameter_fails_the_load_and_says_why(string key, string value, string expected)
    {
        Assert.Equal(Status.InvalidParameter, _h.Start(new AntivirusDriver(), "antivirus", (key, value)));
        Assert.Contains(expected, Assert.Single(_h.Events("config-error")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void With_scanning_elsewhere_the_scan_filter_may_hold_opens_for_the_hold_time_and_denies_on_timeout()
    {
        Assert.Equal(Status.Success, _h.Start(new AntivirusDriver(), "antivirus", ("asyncScan", "true"), ("holdTime", "12")));

        Palisade.Kernel.Io.Minifilter scan = Assert.Single(_h.Kernel.Files.Filters.Snapshot, f => f.Name == AntivirusDriver.ScanFilterName);
        Assert.Equal((12_000L, true), (scan.Policy.HoldMilliseconds, scan.Policy.DenyOnTimeout));
    }

    [Fact]
    public void The_verdict_cache_parameter_sizes_the_scan_filters_cache()
    {
        Assert.Equal(Status.Success, _h.Start(new AntivirusDriver(), "antivirus", ("verdictCache", "131072")));

        Palisade.Kernel.Io.Minifilter scan = Assert.Single(_h.Kernel.Files.Filters.Snapshot, f => f.Name == AntivirusDriver.ScanFilterName);
        Assert.Equal(131_072, scan.Verdicts.Capacity);
    }

    [Theory]
    [InlineData("md5 00112233 Name", "unknown signature kind")]
    [InlineData("hex 0011 Name", "4 to 1024 bytes")]
    [InlineData("hex 0g112233 Name", "hex digits")]
    [InlineData("hex 00112233", "expected 'sha256 HEX NAME'")]
    public void Each_kind_of_bad_signature_line_is_explained(string line, string expected)
    {
        Assert.False(SignatureSet.TryParse("\n" + line, out _, out string? error));
        Assert.StartsWith("line 2: ", error, StringComparison.Ordinal);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void An_infected_file_is_moved_to_the_quarantine_folder()
    {
        string quarantine = Directory.CreateDirectory(Path.Combine(_h.Home, "quarantine")).FullName;
        Start(("quarantine", quarantine));
        string eicar = _h.WriteFile("eicar.com", Eicar);

        Assert.Equal(Status.AccessDenied, _h.Open(eicar));

        Assert.False(File.Exists(eicar));
        string moved = Assert.Single(Directory.GetFiles(quarantine));
        Assert.Equal(Eicar, File.ReadAllText(moved));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(moved));
        Assert.Contains("quarantined as " + moved, Assert.Single(_h.Events("detection")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Exec_of_an_infected_image_is_denied_by_the_process_create_callback()
    {
        Start(("scanOnRead", "false"));
        string image = _h.WriteFile("evil", Eicar);

        Assert.Equal(Status.AccessDenied, _h.Exec(300, image));

        DriverEvent detection = Assert.Single(_h.Events("detection"));
        Assert.Equal(300, detection.ProcessId);
        Assert.Null(_h.Kernel.ProcessTable.Find(300));
    }

    [Fact]
    public void Exec_of_a_clean_image_is_allowed_and_its_verdict_cached()
    {
        Start();
        string image = _h.WriteFile("good", "#!/bin/sh\necho good\n");

        Assert.Equal(Status.Success, _h.Exec(301, image));
        Assert.Equal(Status.Success, _h.Exec(302, image));
        Assert.Equal(1, _av.ScanCount);
    }

    [Fact]
    public void Exec_is_denied_when_the_path_no_longer_names_the_image_that_will_run()
    {
        Start();
        string image = _h.WriteFile("swapped", "#!/bin/sh\necho clean\n");
        string other = _h.WriteFile("other", "#!/bin/sh\necho other\n");

        Assert.Equal(Status.AccessDenied, _h.Exec(303, image, DriverHarness.IdentityOf(other)));
        Assert.Single(_h.Events("image-mismatch"));
    }

    [Fact]
    public void Devices_and_kernel_views_are_not_scanned()
    {
        Start();
        Assert.Equal(Status.Success, _h.Open("/dev/zero"));
        Assert.Equal(Status.Success, _h.Open("/proc/self/status"));
        Assert.Equal(0, _av.ScanCount);
    }

    [Fact]
    public void A_regular_file_reached_through_dev_or_proc_is_scanned_as_any_other()
    {
        Start();
        string eicar = _h.WriteFile("eicar.com", Eicar);

        Assert.Equal(Status.AccessDenied, _h.Open("/dev/.." + eicar));
        Assert.Equal(Status.AccessDenied, _h.Open("/proc/.." + eicar));
        Assert.Equal(2, _av.ScanCount);
    }

    [Fact]
    public void A_file_longer_than_maxScanSize_is_searched_only_up_to_the_limit()
    {
        string sigs = _h.WriteFile("av.sigs", "hex deadbeefcafebabe Test.Pattern.B\n");
        Start(("signatures", sigs), ("maxScanSize", "8192"));
        byte[] early = new byte[20_000], late = new byte[20_000];
        Convert.FromHexString("deadbeefcafebabe").CopyTo(early, 8000);
        Convert.FromHexString("deadbeefcafebabe").CopyTo(late, 9000);

        Assert.Equal(Status.AccessDenied, _h.Open(_h.WriteFile("early.bin", early)));
        Assert.Equal(Status.Success, _h.Open(_h.WriteFile("late.bin", late)));
    }

    [Fact]
    public void The_driver_registers_an_antivirus_product_with_the_security_center()
    {
        Start();
        SecurityProduct product = Assert.Single(_h.Kernel.SecurityCenter.List());
        Assert.Equal(SecurityProductKind.Antivirus, product.Kind);
        Assert.Equal(ProductState.On, product.State);
        Assert.Equal("antivirus", product.DriverName);
    }
}
