using Palisade.Api;
using Palisade.Drivers.SelfProtection;
using Palisade.Kernel.Registry;

namespace Palisade.Drivers.Tests;

public sealed class SelfProtectionTests : IDisposable
{
    private const int Agent = 200;
    private const int Attacker = 100;
    private const string ProductKey = @"\Registry\Machine\Software\Palisade\Sample";
    private readonly RecordingRegistry _registry = new();
    private readonly DriverHarness _h;
    private readonly SelfProtectionDriver _driver = new();
    private readonly string _productFiles;

    public SelfProtectionTests()
    {
        _h = new DriverHarness(_registry);
        _productFiles = Path.Combine(_h.Files, "product");
        Directory.CreateDirectory(Path.Combine(_productFiles, "bin"));
        File.WriteAllText(Path.Combine(_productFiles, "bin", "agent"), "#!/bin/sh\n");
        File.WriteAllText(Path.Combine(_productFiles, "agent.conf"), "level=high\n");
        Assert.Equal(Status.Success, _h.Start(_driver, "selfprotect",
            ("processes", _productFiles + "/bin/"), ("files", _productFiles), ("keys", ProductKey.ToUpperInvariant() + @"\")));
        Assert.Equal(Status.Success, _h.Exec(Agent, Path.Combine(_productFiles, "bin", "agent")));
        Assert.Equal(Status.Success, _h.Exec(Attacker, "/usr/bin/bash"));

        // The kernel read the driver's Parameters key when it started it; what follows is the tests' own traffic.
        Assert.Equal([(RegistryOperation.EnumerateValue, RegistryClient.ParametersKey("selfprotect"))], _registry.Performed);
        _registry.Performed.Clear();
    }

    public void Dispose() => _h.Dispose();

    [Fact]
    public void Another_process_asking_to_terminate_a_protected_process_gets_AccessDenied_without_Terminate()
    {
        Assert.Equal(Status.AccessDenied, _h.OpenProcess(Attacker, Agent, ProcessAccessRights.Terminate, out ProcessAccessRights granted));

        Assert.Equal(ProcessAccessRights.None, granted & ProcessAccessRights.Terminate);
        Assert.Equal(Attacker, Assert.Single(_h.Events("tamper-attempt")).ProcessId);
    }

    [Fact]
    public void Debugging_and_memory_writes_are_stripped_while_reading_information_is_left()
    {
        ProcessAccessRights ptrace = ProcessAccessRights.VmWrite | ProcessAccessRights.VmRead | ProcessAccessRights.SuspendResume;
        Assert.Equal(Status.AccessDenied, _h.OpenProcess(Attacker, Agent, ptrace | ProcessAccessRights.VmOperation, out ProcessAccessRights granted));
        Assert.Equal(ProcessAccessRights.VmRead, granted);

        Assert.Equal(Status.Success, _h.OpenProcess(Attacker, Agent, ProcessAccessRights.QueryLimitedInformation | ProcessAccessRights.Synchronize, out _));
    }

    [Fact]
    public void A_protected_process_may_still_signal_itself_and_others_may_signal_unprotected_processes()
    {
        Assert.Equal(Status.Success, _h.OpenProcess(Agent, Agent, ProcessAccessRights.Terminate, out _));
        Assert.Equal(Status.Success, _h.OpenProcess(Agent, Attacker, ProcessAccessRights.Terminate, out _));
        Assert.Equal(Status.Success, _h.OpenProcess(Attacker, Attacker, ProcessAccessRights.Terminate, out _));
    }

    [Fact]
    public void A_fork_of_the_product_is_protected_and_may_manage_its_parent()
    {
        Assert.Equal(Status.Success, _h.Fork(Agent, 201));

        Assert.True(_driver.IsProtectedProcess(201));
        Assert.Equal(Status.AccessDenied, _h.OpenProcess(Attacker, 201, ProcessAccessRights.Terminate, out _));
        Assert.Equal(Status.Success, _h.OpenProcess(201, Agent, ProcessAccessRights.Terminate, out _));
    }

    [Fact]
    public void A_protected_process_that_execs_another_program_or_exits_is_no_longer_protected()
    {
        Assert.Equal(Status.Success, _h.Fork(Agent, 202));
        Assert.Equal(Status.Success, _h.Exec(202, "/usr/bin/sleep"));
        Assert.Equal(Status.Success, _h.OpenProcess(Attacker, 202, ProcessAccessRights.Terminate, out _));

        Assert.Equal(Status.Success, _h.ExitProcess(Agent));
        Assert.False(_driver.IsProtectedProcess(Agent));
    }

    [Fact]
    public void Protected_files_open_for_reading_but_not_for_writing()
    {
        string conf = Path.Combine(_productFiles, "agent.conf");

        Assert.Equal(Status.Success, _h.Open(conf, FileAccessRights.Read, pid: Attacker));
        Assert.Equal(Status.AccessDenied, _h.Open(conf, FileAccessRights.Write, pid: Attacker));
        Assert.Equal(Status.AccessDenied, _h.Open(conf, FileAccessRights.Read, CreateDisposition.Overwrite, pid: Attacker));
        Assert.Equal(Status.AccessDenied, _h.Open(Path.Combine(_productFiles, "new.so"), FileAccessRights.Write, CreateDisposition.Create, pid: Attacker));
        Assert.Equal("level=high\n", File.ReadAllText(conf));
        Assert.False(File.Exists(Path.Combine(_productFiles, "new.so")));
    }

    [Fact]
    public void Protected_files_cannot_be_deleted_truncated_or_renamed()
    {
        string conf = Path.Combine(_productFiles, "agent.conf");

        Assert.Equal(Status.AccessDenied, _h.Delete(conf, pid: Attacker));
        Assert.Equal(Status.AccessDenied, _h.Truncate(conf, 0, pid: Attacker));
        Assert.Equal(Status.AccessDenied, _h.Rename(conf, Path.Combine(_h.Files, "stolen.conf"), pid: Attacker));
        Assert.Equal("level=high\n", File.ReadAllText(conf));
    }

    [Fact]
    public void A_file_cannot_be_renamed_over_a_protected_one_nor_its_folder_moved()
    {
        string fake = _h.WriteFile("fake.conf", "level=off\n");

        Assert.Equal(Status.AccessDenied, _h.Rename(fake, Path.Combine(_productFiles, "agent.conf"), pid: Attacker));
        Assert.Equal(Status.AccessDenied, _h.Rename(_h.Files, _h.Files + ".moved", pid: Attacker));
        Assert.Equal("level=high\n", File.ReadAllText(Path.Combine(_productFiles, "agent.conf")));
    }

    [Fact]
    public void Files_outside_the_protected_prefix_are_left_alone()
    {
        string near = _h.WriteFile("productive.txt", "x");
        Assert.Equal(Status.Success, _h.Open(near, FileAccessRights.Write, pid: Attacker));
        Assert.Equal(Status.Success, _h.Delete(near, pid: Attacker));
        Assert.False(File.Exists(near));
    }

    [Fact]
    public void The_product_itself_may_update_its_files()
    {
        string conf = Path.Combine(_productFiles, "agent.conf");
        Assert.Equal(Status.Success, _h.Open(conf, FileAccessRights.Write, pid: Agent));
        Assert.Equal(Status.Success, _h.Truncate(conf, 0, pid: Agent));
        Assert.Equal(0, new FileInfo(conf).Length);
    }

    [Theory]
    [InlineData(nameof(RegistryOperation.SetValue), ProductKey, "Level", null)]
    [InlineData(nameof(RegistryOperation.DeleteValue), ProductKey + @"\Engine", "Enabled", null)]
    [InlineData(nameof(RegistryOperation.DeleteKey), ProductKey + @"\Engine", null, null)]
    [InlineData(nameof(RegistryOperation.CreateKey), ProductKey + @"\Injected", null, null)]
    [InlineData(nameof(RegistryOperation.RenameKey), ProductKey, null, "Renamed")]
    [InlineData(nameof(RegistryOperation.RenameKey), @"\Registry\Machine\Software\Palisade", null, "Moved")]
    public void Changes_at_or_below_a_protected_key_are_blocked(string operation, string key, string? value, string? newName)
    {
        Assert.Equal(Status.AccessDenied, _h.Registry(Attacker, Enum.Parse<RegistryOperation>(operation), key, value, newName));
        Assert.Empty(_registry.Performed);
        Assert.Single(_h.Events("tamper-attempt"));
    }

    [Fact]
    public void Reading_protected_keys_and_changing_other_keys_is_allowed()
    {
        Assert.Equal(Status.Success, _h.Registry(Attacker, RegistryOperation.QueryValue, ProductKey, "Level"));
        Assert.Equal(Status.Success, _h.Registry(Attacker, RegistryOperation.SetValue, @"\Registry\Machine\Software\Palisade\SampleOther", "Level"));
        Assert.Equal(Status.Success, _h.Registry(Agent, RegistryOperation.SetValue, ProductKey, "Level"));
        Assert.Equal(3, _registry.Performed.Count);
    }

    [Fact]
    public void Nothing_to_protect_fails_the_load_with_a_clear_message()
    {
        using var h = new DriverHarness();
        Assert.Equal(Status.InvalidParameter, h.Start(new SelfProtectionDriver(), "selfprotect"));
        Assert.Contains("nothing to protect", Assert.Single(h.Events("config-error")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_driver_registers_a_self_protection_product()
    {
        Assert.Equal(SecurityProductKind.SelfProtection, Assert.Single(_h.Kernel.SecurityCenter.List()).Kind);
    }

    /// <summary>A registry store that records what reached it: proves a blocked operation never did.</summary>
    private sealed class RecordingRegistry : IRegistryStore
    {
        public List<(RegistryOperation, string)> Performed { get; } = [];

        public Status Perform(RegistryRequest request)
        {
            lock (Performed)
            {
                Performed.Add((request.Operation, request.KeyPath));
            }

            return Status.Success;
        }

        public void Dispose()
        {
        }
    }
}
