namespace Palisade.Kernel;

/// <summary>The flavor the kernel boots in.</summary>
internal enum KernelFlavor
{
    /// <summary>The guard runs and only signed, trusted drivers load. There is no way to turn either off.</summary>
    Protected,

    /// <summary>The counterpart of 32-bit Windows: no guard, unsigned drivers allowed. Announced at every start.</summary>
    Compat,
}

/// <summary>Boot options, validated at construction.</summary>
internal sealed class KernelOptions
{
    public static readonly TimeSpan DefaultCallbackDeadline = TimeSpan.FromSeconds(5);

    public KernelOptions(KernelFlavor flavor = KernelFlavor.Protected, string? home = null, TimeSpan? callbackDeadline = null, Stream? events = null, bool ownsEvents = false, Palisade.Kernel.Events.EventStreamOptions? eventOptions = null)
    {
        if (!Enum.IsDefined(flavor))
        {
            throw new ArgumentOutOfRangeException(nameof(flavor), flavor, "unknown kernel flavor");
        }

        TimeSpan deadline = callbackDeadline ?? DefaultCallbackDeadline;
        if (deadline < TimeSpan.FromMilliseconds(10) || deadline > TimeSpan.FromMinutes(5))
        {
            throw new ArgumentOutOfRangeException(nameof(callbackDeadline), deadline, "the callback deadline must be between 10 ms and 5 minutes");
        }

        Flavor = flavor;
        Home = home ?? DefaultHome();
        CallbackDeadline = deadline;
        Events = events;
        OwnsEvents = ownsEvents;
        EventOptions = eventOptions ?? Palisade.Kernel.Events.EventStreamOptions.Default;
    }

    public KernelFlavor Flavor { get; }

    /// <summary>The kernel's state folder: trust store, registry hive, crash dumps.</summary>
    public string Home { get; }

    public TimeSpan CallbackDeadline { get; }

    public Stream? Events { get; }

    public bool OwnsEvents { get; }

    /// <summary>The event stream's policy when its consumer is slow, and its channel sizes.</summary>
    public Palisade.Kernel.Events.EventStreamOptions EventOptions { get; }

    /// <summary><c>$PALISADE_HOME</c>, else <c>~/.palisade</c>.</summary>
    public static string DefaultHome() => Drivers.PalisadeHome.Resolve(null);
}
