using Palisade.Api;

namespace Palisade.Kernel.Tests;

public sealed class SecurityCenterTests : IDisposable
{
    private readonly TestKernel _k = new();

    public void Dispose() => _k.Dispose();

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
}
