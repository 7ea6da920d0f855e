// A minifilter that faults on purpose on every create whose path contains "fault-me", in the way its parameters say:
//   mode=throw      the pre-create throws
//   mode=overrun    the pre-create takes longer than the kernel's deadline, then returns a deny
//   mode=lie        the pre-create returns Pending without holding anything
// onTimeout=allow|deny and disableAfter=N set the filter's CallbackOptions. A second filter, "faulting-control", enables
// the first again on a create of a path ending in "enable-me" (the first is not called while disabled). Every fault the
// kernel reports to the driver is written back as a "told" event, so a test sees what the driver was told.
using System.Globalization;
using Palisade.Api;

namespace Palisade.TestDrivers.Faulting;

/// <summary>The faulting driver's entry point.</summary>
public sealed class FaultingDriver : IDriver
{
    private IDriverContext? _context;
    private CallbackCookie _faulting;
    private string _mode = "throw";

    /// <inheritdoc />
    public Status Load(IDriverContext context)
    {
        _context = context;
        IReadOnlyDictionary<string, string> p = context.Parameters;
        _mode = p.TryGetValue("mode", out string? mode) ? mode : "throw";
        var options = new CallbackOptions
        {
            TimeoutVerdict = p.TryGetValue("onTimeout", out string? verdict) && verdict == "deny" ? TimeoutVerdict.Deny : TimeoutVerdict.Allow,
            DisableAfterFaults = p.TryGetValue("disableAfter", out string? after) ? int.Parse(after, CultureInfo.InvariantCulture) : 0,
        };

        Status s = context.Files.RegisterFilter(Filter("faulting", "320100", Faulting), out _faulting);
        s = s.IsError ? s : context.SetCallbackOptions(_faulting, options);
        s = s.IsError ? s : context.Files.RegisterFilter(Filter("faulting-control", "320200", Control), out _);
        return s.IsError ? s : context.RegisterFaultCallback(Told, out _);
    }

    /// <inheritdoc />
    public void Unload()
    {
    }

    private static FilterRegistration Filter(string name, string altitude, FilePreCallback pre) => new()
    {
        Name = name,
        Altitude = altitude,
        Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = pre }],
    };

    private PreOperationStatus Faulting(ref FileOperation op)
    {
        if (!op.Path.Contains("fault-me", StringComparison.Ordinal))
        {
            return PreOperationStatus.SuccessNoCallback;
        }

        switch (_mode)
        {
            case "overrun":
                using (var never = new ManualResetEventSlim(false))
                {
                    never.Wait(TimeSpan.FromSeconds(7));
                }

                op.Status = Status.AccessDenied;
                return PreOperationStatus.Complete;
            case "lie":
                return PreOperationStatus.Pending;
            default:
                throw new InvalidOperationException("fault on purpose: " + op.Path);
        }
    }

    private PreOperationStatus Control(ref FileOperation op)
    {
        if (op.Path.EndsWith("enable-me", StringComparison.Ordinal))
        {
            _context!.EnableRegistration(_faulting);
        }

        return PreOperationStatus.SuccessNoCallback;
    }

    private void Told(in RegistrationFaultInfo fault) => _context!.ReportEvent("told", string.Create(CultureInfo.InvariantCulture,
        $"{fault.Kind} {fault.RegistrationName} | {fault.Operation} | consecutive={fault.ConsecutiveFaults} disabled={fault.Disabled} verdict={fault.AppliedVerdict}"), 0, null);
}
