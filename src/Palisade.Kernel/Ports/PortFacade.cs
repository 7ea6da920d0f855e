using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Ports;

/// <summary>A driver's <see cref="IPortManager"/>: its ports and the processes it keeps out of its file callbacks.</summary>
internal sealed class PortFacade(DriverContext c) : IPortManager
{
    public Status CreatePort(string name, PortOptions options, PortCallbacks callbacks, out IPort? port)
    {
        port = null;
        return c.Valid ? c.Kernel.Ports.Create(c, name, options, callbacks, out port) : Status.InvalidDeviceState;
    }

    public Status ExcludeProcess(int processId) => c.Valid ? c.Driver.Exclusions.Add(processId, source: null) : Status.InvalidDeviceState;

    public Status IncludeProcess(int processId) =>
        !c.Valid ? Status.InvalidDeviceState : c.Driver.Exclusions.Remove(processId, source: null) ? Status.Success : Status.NotFound;
}
