// The context the loader tests hand to a driver: it records the driver's events and offers its parameters. The
// fixture drivers use only DriverName, Parameters and ReportEvent; the callback areas belong to the kernel's own
// context and their tests, so here they refuse to be used.
using System.Collections.Concurrent;
using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Tests.Drivers;

internal sealed class RecordingDriverContext(string driverName, Dictionary<string, string>? parameters = null) : IDriverContext
{
    public ConcurrentQueue<string> Events { get; } = new();

    public string DriverName { get; } = driverName;

    public Version ApiVersion => DriverLoader.ApiVersion;

    public IReadOnlyDictionary<string, string> Parameters { get; } = parameters ?? [];

    public IProcessCallbacks Processes => throw AreaNotInThisTest();

    public IObjectCallbacks Objects => throw AreaNotInThisTest();

    public IRegistryCallbacks Registry => throw AreaNotInThisTest();

    public IFilterManager Files => throw AreaNotInThisTest();

    public INetworkFilterEngine Network => throw AreaNotInThisTest();

    public ISecurityCenter SecurityCenter => throw AreaNotInThisTest();

    public Status ReportEvent(string kind, string message, int processId, string? path)
    {
        Events.Enqueue(kind + ": " + message);
        return Status.Success;
    }

    private static InvalidOperationException AreaNotInThisTest() =>
        new("the loader tests give drivers no callback areas; the fixture drivers do not use them.");
}
