using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Drivers;

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

/// <summary>The security center: products and their reported health.</summary>
internal sealed class SecurityCenterService
{
    public CallbackTable<ProductEntry> Products { get; } = new("security products", 64, byAltitude: false);

    public event Action<ProductEntry>? StateChanged;

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
            StateChanged?.Invoke(entry);
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
        StateChanged?.Invoke(p);
        return Status.Success;
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
}
