using System.Reflection;
using Palisade.Api;
using Palisade.TestDrivers.Helper;

namespace Palisade.TestDrivers.Sample;

/// <summary>
/// Reports "loaded" and "unloaded" events through its context so that tests can see the kernel called it, and
/// registers a process-exit callback that it never unregisters, as careless drivers do: the kernel must remove it
/// at unload, or the callback would keep the driver's code alive. Its
/// "behaviour" parameter makes Load or Unload fail the ways a real driver can: "load-fails" returns AccessDenied,
/// "load-throws" and "unload-throws" throw. "load-kernel-by-name" tries what a driver that pokes the kernel would do
/// at run time, Assembly.Load("Palisade.Kernel"), and reports whether it got the assembly.
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

        if (behaviour == "load-kernel-by-name")
        {
            context.ReportEvent("kernel-by-name", TryLoadKernel(), 0, null);
        }

        Status registered = context.Processes.RegisterProcessExit(OnProcessExit, out _);
        if (registered.IsError)
        {
            return registered;
        }

        context.ReportEvent("loaded", Greeting.For(context.DriverName), 0, null);
        return behaviour == "load-fails" ? Status.AccessDenied : Status.Success;
    }

    private static string TryLoadKernel()
    {
        try
        {
            return "loaded " + Assembly.Load(new AssemblyName("Palisade.Kernel")).FullName;
        }
        catch (FileLoadException e)
        {
            // The runtime wraps the exception the load context threw; the kernel's reason is the inner message.
            return "refused: " + (e.InnerException ?? e).Message;
        }
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
