using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Callbacks;

/// <summary>A registration that holds a single callback delegate (process, thread, image-load, registry callbacks).</summary>
internal sealed class CallbackRegistration<TDelegate> : Registration where TDelegate : Delegate
{
    public CallbackRegistration(DriverObject? owner, TDelegate callback, decimal altitude = 0, string? altitudeText = null)
        : base(owner, altitude, altitudeText) => Callback = callback;

    public TDelegate Callback { get; }

    public override Delegate PrimaryCallback => Callback;
}
