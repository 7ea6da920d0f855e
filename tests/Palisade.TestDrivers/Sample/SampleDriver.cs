using Palisade.Api;
using Palisade.TestDrivers.Helper;

namespace Palisade.TestDrivers.Sample;

/// <summary>
/// Reports "loaded" and "unloaded" events through its context so that tests can see the kernel called it, and
/// registers a process-exit callback that it never unregisters, as careless drivers do: the kernel must remove it
/// at unload, or the callback would keep the driver's code alive. Its
/// "behaviour" parameter makes Load or Unload fail the ways a real driver can: "load-fails" returns AccessDenied,
/// "load-throws" and "unload-throws" throw. It passes the driver verifier, so the protected flavor loads it.
/// </summary>
public sealed class SampleDriver : IDriver
{
    private IDriverContext? _context;

    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        context.Parameters.TryGetValue("behaviour", out string? behaviour);
        if (behaviour == "load-throws")
        {
            throw new InvalidOperationException("the sample driver was told to throw from Load");
        }

        Status registered = context.Processes.RegisterProcessExit(OnProcessExit, out _);
        if (registered.IsError)
        {
            return registered;
        }

        context.ReportEvent("loaded", Greeting.For(context.DriverName), 0, null);
        return behaviour == "load-fails" ? Status.AccessDenied : Status.Success;
    }

    private void OnProcessExit(in ProcessExitInfo info) => _context?.ReportEvent("process-exit", "seen", info.ProcessId, null);

    public void Unload()
    {
        if (_context is null)
        {
            return;
        }

        _context.ReportEvent("unloaded", "goodbye from " + _context.DriverName, 0, null);
        if (_context.Parameters.TryGetValue("behaviour", out string? behaviour) && behaviour == "unload-throws")
        {
            throw new InvalidOperationException("the sample driver was told to throw from Unload");
        }
    }
}
