// The antivirus picks up new parameters while it runs: a change of its Parameters key in the registry reaches it
// through IDriverContext.RegisterParametersChanged, without a restart.
using System.Text;
using Palisade.Api;
using Palisade.Drivers.Antivirus;
using Palisade.Kernel.Registry;

namespace Palisade.Drivers.Tests;

public sealed class AntivirusReconfigurationTests : IDisposable
{
    private const string Marker = "PALISADE-RECONFIGURATION-MARKER";
    private readonly DriverHarness _h = new(RegistryManager.CreateVolatile());
    private readonly AntivirusDriver _av = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public void A_signature_file_set_in_the_registry_applies_to_the_next_open_of_a_file_already_scanned_clean()
    {
        Assert.Equal(Status.Success, _h.Start(_av, "antivirus"));
        string file = _h.WriteFile("payload.bin", "before " + Marker + " after");
        Assert.Equal(Status.Success, _h.Open(file));
        string signatures = _h.WriteFile("av.sigs", "hex " + Convert.ToHexString(Encoding.ASCII.GetBytes(Marker)) + " Test.Reconfigured\n");

        Assert.Equal(Status.Success, _h.SetParameter("antivirus", "signatures", signatures));
        _h.WaitForEvent("reconfigured");

        Assert.Equal(Status.AccessDenied, _h.Open(file));
        Assert.Contains("Test.Reconfigured", Assert.Single(_h.Events("detection")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_value_is_reported_and_the_running_configuration_is_kept()
    {
        Assert.Equal(Status.Success, _h.Start(_av, "antivirus"));
        string eicar = _h.WriteFile("eicar.com", "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");

        Assert.Equal(Status.Success, _h.SetParameter("antivirus", "scanOnRead", "sometimes"));
        DriverEvent refused = _h.WaitForEvent("config-error");

        Assert.Contains("scanOnRead", refused.Message, StringComparison.Ordinal);
        Assert.Equal(Status.AccessDenied, _h.Open(eicar));
    }

    [Fact]
    public void A_parameter_given_on_the_command_line_wins_over_a_later_registry_change()
    {
        Assert.Equal(Status.Success, _h.Start(_av, "antivirus", ("scanOnRead", "true")));
        string eicar = _h.WriteFile("eicar.com", "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");
        string quarantine = Directory.CreateDirectory(Path.Combine(_h.Home, "quarantine")).FullName;

        // One change the override hides and one it does not: only the second is news to the driver.
        Assert.Equal(Status.Success, _h.SetParameter("antivirus", "scanOnRead", "false"));
        Assert.Equal(Status.Success, _h.SetParameter("antivirus", "quarantine", quarantine));
        DriverEvent reconfigured = _h.WaitForEvent("reconfigured");

        Assert.Contains("changed: quarantine)", reconfigured.Message, StringComparison.Ordinal);
        Assert.Contains("scanOnRead=True", reconfigured.Message, StringComparison.Ordinal);
        Assert.Equal(Status.AccessDenied, _h.Open(eicar));
        Assert.Single(Directory.GetFiles(quarantine));
    }
}
