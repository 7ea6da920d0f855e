using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Events;

namespace Palisade.Kernel.SecurityCenter;

/// <summary>A registered product.</summary>
internal sealed class ProductEntry(DriverObject? owner, SecurityProductKind kind, string name) : Registration(owner, 0, null)
{
    public SecurityProductKind Kind { get; } = kind;

    public string DisplayName { get; } = name;

    public volatile ProductState State = ProductState.On;

    public override Delegate? PrimaryCallback => null;

    public override string Describe() => "security product " + DisplayName;
}

/// <summary>
/// The security center: products and their reported health. Every change (a product registered, its state reported,
/// a product unregistered by its driver or removed at the driver's unload) is a <c>security-center</c> line of the
/// event stream (docs/events.md).
/// </summary>
internal sealed class SecurityCenterService(EventStream events)
{
    public CallbackTable<ProductEntry> Products { get; } = new("security products", 64, byAltitude: false);

    public Status Register(DriverObject? owner, SecurityProductKind kind, string? name, out CallbackCookie cookie)
    {
        cookie = default;
        if (string.IsNullOrEmpty(name) || name.Length > 128 || !Enum.IsDefined(kind))
        {
            return Status.InvalidParameter;
        }

        foreach (ProductEntry p in Products.Snapshot)
        {
            if (p.DisplayName == name)
            {
                return Status.ObjectNameCollision;
            }
        }

        var entry = new ProductEntry(owner, kind, name);
        Status s = Products.Add(entry);
        if (s.IsSuccess)
        {
            cookie = entry.Cookie;
            Write("registered", entry);
        }

        return s;
    }

    public Status ReportState(DriverObject? owner, CallbackCookie cookie, ProductState state)
    {
        if (!Enum.IsDefined(state))
        {
            return Status.InvalidParameter;
        }

        ProductEntry? p = Products.Find(cookie, owner);
        if (p is null)
        {
            return Status.InvalidHandle;
        }

        p.State = state;
        Write("state", p);
        return Status.Success;
    }

    public Status Unregister(DriverObject? owner, CallbackCookie cookie)
    {
        ProductEntry? p = Products.Find(cookie, owner);
        if (p is null || Products.Remove(cookie, owner).IsError)
        {
            return Status.InvalidHandle;
        }

        Write("unregistered", p);
        return Status.Success;
    }

    /// <summary>Removes every product of a driver (at its unload); returns how many.</summary>
    public int RemoveOwnedBy(DriverObject owner)
    {
        ProductEntry[] removed = Products.TakeOwnedBy(owner);
        foreach (ProductEntry p in removed)
        {
            Write("unregistered", p);
        }

        return removed.Length;
    }

    public IReadOnlyList<SecurityProduct> List()
    {
        ProductEntry[] all = Products.Snapshot;
        var list = new SecurityProduct[all.Length];
        for (int i = 0; i < all.Length; i++)
        {
            list[i] = new SecurityProduct(all[i].Kind, all[i].DisplayName, all[i].OwnerName, all[i].State);
        }

        return list;
    }

    private void Write(string change, ProductEntry p) => events.WriteSecurityCenter(change, p.OwnerName, p.Kind, p.DisplayName, p.State);
}
