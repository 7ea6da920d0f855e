using System.Text.Json;
using Palisade.Api;

namespace Palisade.Kernel.Tests;

public sealed class SecurityCenterTests : IDisposable
{
    private readonly MemoryStream _events = new();
    private readonly TestKernel _k;

    public SecurityCenterTests() => _k = new TestKernel(events: _events);

    public void Dispose()
    {
        _k.Dispose();
        _events.Dispose();
    }

    /// <summary>The security-center lines written so far, as (change, driver, kind, product, state).</summary>
    private List<(string, string, string, string, string)> SecurityCenterLines()
    {
        _k.Kernel.Events.Flush();
        lock (_events)
        {
            return [.. System.Text.Encoding.UTF8.GetString(_events.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => JsonDocument.Parse(l).RootElement)
                .Where(e => e.GetProperty("type").GetString() == "security-center")
                .Select(e => (e.GetProperty("change").GetString()!, e.GetProperty("driver").GetString()!, e.GetProperty("kind").GetString()!,
                    e.GetProperty("product").GetString()!, e.GetProperty("state").GetString()!))];
        }
    }

    [Fact]
    public void A_product_registers_reports_its_state_and_is_listed_with_its_driver()
    {
        CallbackCookie cookie = default;
        IDriverContext c = _k.Start(c => c.SecurityCenter.RegisterProduct(SecurityProductKind.Antivirus, "Palisade AV", out cookie), name: "av");
        Assert.Equal(Status.Success, c.SecurityCenter.ReportState(cookie, ProductState.OutOfDate));
        Assert.Equal(Status.Success, c.SecurityCenter.ListProducts(out IReadOnlyList<SecurityProduct> products));
        SecurityProduct p = Assert.Single(products);
        Assert.Equal(("Palisade AV", "av", ProductState.OutOfDate, SecurityProductKind.Antivirus), (p.DisplayName, p.DriverName, p.State, p.Kind));
    }

    [Fact]
    public void Bad_arguments_and_duplicates_get_statuses()
    {
        IDriverContext c = _k.Start(c => c.SecurityCenter.RegisterProduct(SecurityProductKind.Firewall, "FW", out _));
        Assert.Equal(Status.ObjectNameCollision, c.SecurityCenter.RegisterProduct(SecurityProductKind.Firewall, "FW", out _));
        Assert.Equal(Status.InvalidParameter, c.SecurityCenter.RegisterProduct(SecurityProductKind.Firewall, "", out _));
        Assert.Equal(Status.InvalidParameter, c.SecurityCenter.RegisterProduct((SecurityProductKind)99, "x", out _));
        Assert.Equal(Status.InvalidHandle, c.SecurityCenter.ReportState(new CallbackCookie(1), ProductState.On));
    }

    [Fact]
    public void Unloading_the_driver_removes_its_products()
    {
        _k.Start(c => c.SecurityCenter.RegisterProduct(SecurityProductKind.Antivirus, "AV", out _), out var record);
        _k.Kernel.StopDriver(record);
        Assert.Empty(_k.Kernel.SecurityCenter.List());
    }

    [Fact]
    public void Every_change_of_the_security_center_is_an_event_in_the_order_it_was_made()
    {
        CallbackCookie av = default;
        IDriverContext c = _k.Start(c => c.SecurityCenter.RegisterProduct(SecurityProductKind.Antivirus, "AV", out av), out var record, name: "av");
        Assert.Equal(Status.Success, c.SecurityCenter.RegisterProduct(SecurityProductKind.Firewall, "FW", out CallbackCookie fw));
        Assert.Equal(Status.Success, c.SecurityCenter.ReportState(av, ProductState.OutOfDate));
        Assert.Equal(Status.Success, c.SecurityCenter.UnregisterProduct(fw));
        _k.Kernel.StopDriver(record);

        Assert.Equal(
        [
            ("registered", "av", "Antivirus", "AV", "On"),
            ("registered", "av", "Firewall", "FW", "On"),
            ("state", "av", "Antivirus", "AV", "OutOfDate"),
            ("unregistered", "av", "Firewall", "FW", "On"),
            ("unregistered", "av", "Antivirus", "AV", "OutOfDate"),
        ], SecurityCenterLines());
    }

    [Fact]
    public void A_refused_change_is_no_event()
    {
        IDriverContext c = _k.Start(c => c.SecurityCenter.RegisterProduct(SecurityProductKind.Firewall, "FW", out _));
        Assert.Equal(Status.ObjectNameCollision, c.SecurityCenter.RegisterProduct(SecurityProductKind.Firewall, "FW", out _));
        Assert.Equal(Status.InvalidHandle, c.SecurityCenter.UnregisterProduct(new CallbackCookie(1)));
        Assert.Equal(Status.InvalidParameter, c.SecurityCenter.ReportState(new CallbackCookie(1), (ProductState)7));

        Assert.Single(SecurityCenterLines());
    }
}
