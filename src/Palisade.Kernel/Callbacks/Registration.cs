using System.Globalization;
using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Callbacks;

/// <summary>
/// One registration made through the driver API: who owns it, its cookie, its altitude (when the kind has one),
/// and whether the kernel has disabled it after a deadline overrun. Concrete registrations add their delegates.
/// </summary>
internal abstract class Registration
{
    private static long s_nextCookie = 0x1000;
    private volatile bool _disabled;

    protected Registration(DriverObject? owner, decimal altitude, string? altitudeText)
    {
        Owner = owner;
        Altitude = altitude;
        AltitudeText = altitudeText;
        Cookie = new CallbackCookie(Interlocked.Increment(ref s_nextCookie));
    }

    /// <summary>The driver that made the registration; null for the kernel's own.</summary>
    public DriverObject? Owner { get; }

    public string OwnerName => Owner?.Name ?? "kernel";

    public CallbackCookie Cookie { get; }

    public decimal Altitude { get; }

    public string? AltitudeText { get; }

    /// <summary>True once the callback monitor has disabled the registration; dispatch skips it.</summary>
    public bool Disabled => _disabled;

    public void Disable() => _disabled = true;

    /// <summary>The delegate the guard fingerprints for this registration (the first one when there are several).</summary>
    public abstract Delegate? PrimaryCallback { get; }
}

/// <summary>Altitudes as the filter manager spells them: a positive decimal number, compared numerically.</summary>
internal static class Altitude
{
    public static bool TryParse(string? text, out decimal value)
    {
        value = 0;
        if (string.IsNullOrEmpty(text) || text.Length > 24)
        {
            return false;
        }

        int dot = text.IndexOf('.', StringComparison.Ordinal);
        int intDigits = dot < 0 ? text.Length : dot;
        if (intDigits is 0 or > 12)
        {
            return false;
        }

        foreach (char c in text)
        {
            if (c is not (>= '0' and <= '9') and not '.')
            {
                return false;
            }
        }

        return decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value) && value > 0;
    }
}
