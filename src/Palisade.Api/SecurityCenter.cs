using System.Collections.Generic;

namespace Palisade.Api;

/// <summary>
/// The security center: security products register here and report their health, so that the user (and
/// <c>palisade run --events</c>) can see which protection is on.
/// </summary>
/// <remarks>At most 64 products at once; a driver may register several products (for example antivirus and firewall).
/// A product is removed when its driver unloads. Every change (a product registered, a state reported, a product
/// unregistered or removed at unload) is a <c>security-center</c> line of the event stream (docs/events.md), in the
/// order the changes were made; a call that fails changes nothing and writes nothing.</remarks>
[ApiInfo(ApiArea.SecurityCenter, "1.0", ApiState.Draft, "antivirus", "host firewall", "product health reporting")]
public interface ISecurityCenter
{
    /// <summary>Registers a product in state <see cref="ProductState.On"/>.</summary>
    /// <param name="kind">The kind of product.</param>
    /// <param name="displayName">The product's name, 1–128 characters, unique among registered products.</param>
    /// <param name="cookie">On success, names the product.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidParameter"/>, <see cref="Status.ObjectNameCollision"/>
    /// or <see cref="Status.TooManyRegistrations"/>.</returns>
    Status RegisterProduct(SecurityProductKind kind, string displayName, out CallbackCookie cookie);

    /// <summary>Reports the product's state.</summary>
    /// <param name="cookie">The product's cookie.</param>
    /// <param name="state">The new state.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidParameter"/> for an undefined state, <see cref="Status.InvalidHandle"/>.</returns>
    Status ReportState(CallbackCookie cookie, ProductState state);

    /// <summary>Unregisters a product. A product has no callbacks, so there is nothing in flight to wait for: the product
    /// is gone from the security center (and its <c>product-unregistered</c> event written) when it returns.</summary>
    /// <param name="cookie">The product's cookie.</param>
    /// <returns><see cref="Status.Success"/> or <see cref="Status.InvalidHandle"/>.</returns>
    Status UnregisterProduct(CallbackCookie cookie);

    /// <summary>Lists every registered product, of every driver.</summary>
    /// <param name="products">Receives a snapshot of the products.</param>
    /// <returns><see cref="Status.Success"/>.</returns>
    Status ListProducts(out IReadOnlyList<SecurityProduct> products);
}

/// <summary>Kinds of security product.</summary>
[ApiInfo(ApiArea.SecurityCenter, "1.0", ApiState.Draft, "product health reporting")]
public enum SecurityProductKind
{
    /// <summary>Antivirus.</summary>
    Antivirus,
    /// <summary>Firewall.</summary>
    Firewall,
    /// <summary>Application control.</summary>
    ApplicationControl,
    /// <summary>Self-protection or anti-tampering.</summary>
    SelfProtection,
    /// <summary>Any other.</summary>
    Other,
}

/// <summary>A product's health.</summary>
[ApiInfo(ApiArea.SecurityCenter, "1.0", ApiState.Draft, "product health reporting")]
public enum ProductState
{
    /// <summary>Protection is on and current.</summary>
    On,
    /// <summary>Protection is off.</summary>
    Off,
    /// <summary>Protection is on but its definitions are out of date.</summary>
    OutOfDate,
}

/// <summary>One registered product, as listed.</summary>
[ApiInfo(ApiArea.SecurityCenter, "1.0", ApiState.Draft, "product health reporting")]
public sealed class SecurityProduct
{
    /// <summary>Makes a listing entry.</summary>
    /// <param name="kind">The kind.</param>
    /// <param name="displayName">The product's name.</param>
    /// <param name="driverName">The driver that registered it.</param>
    /// <param name="state">Its last reported state.</param>
    public SecurityProduct(SecurityProductKind kind, string displayName, string driverName, ProductState state)
    {
        Kind = kind;
        DisplayName = displayName;
        DriverName = driverName;
        State = state;
    }

    /// <summary>The kind.</summary>
    public SecurityProductKind Kind { get; }

    /// <summary>The product's name.</summary>
    public string DisplayName { get; }

    /// <summary>The driver that registered it.</summary>
    public string DriverName { get; }

    /// <summary>Its last reported state.</summary>
    public ProductState State { get; }
}
