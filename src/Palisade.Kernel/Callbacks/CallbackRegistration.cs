using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Callbacks;

/// <summary>A registration that holds a single callback delegate (process, thread, image-load, registry callbacks).</summary>
internal sealed class CallbackRegistration<TDelegate> : Registration where TDelegate : Delegate
{
    public CallbackRegistration(DriverObject? owner, TDelegate callback, decimal altitude = 0, string? altitudeText = null)
        : base(owner, altitude, altitudeText) => Callback = callback;

    public TDelegate Callback { get; }

    public override Delegate PrimaryCallback => Callback;

    /// <summary>Process-create callbacks can hold the creation they decide.</summary>
    public override bool CanPend => typeof(TDelegate) == typeof(Palisade.Api.ProcessCreateCallback);

    public override string Describe()
    {
        string kind = Callback switch
        {
            Palisade.Api.ProcessCreateCallback => "process-create callback",
            Palisade.Api.ProcessExitCallback => "process-exit callback",
            Palisade.Api.ThreadCallback => "thread callback",
            Palisade.Api.ImageLoadCallback => "image-load callback",
            Palisade.Api.RegistryCallback => "registry callback",
            Palisade.Api.NetworkFlowCallback => "flow callback",
            _ => "callback",
        };
        return kind + (AltitudeText is null ? "" : " at " + AltitudeText) + " (cookie 0x" + Cookie.Value.ToString("x", System.Globalization.CultureInfo.InvariantCulture) + ")";
    }
}
