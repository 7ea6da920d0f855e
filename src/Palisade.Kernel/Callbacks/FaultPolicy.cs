using Palisade.Api;
using Palisade.Kernel.Events;

namespace Palisade.Kernel.Callbacks;

/// <summary>
/// What the kernel does about a fault of a registration (a callback that threw, overran its deadline, or returned a
/// verdict the kernel cannot use), in one place for every kind of callback: count it, disable the registration when its
/// <see cref="CallbackOptions.DisableAfterFaults"/> says so, write the <c>driver-fault</c> event that names the driver, the
/// registration and the operation, and tell the driver's fault callbacks. The verdict itself (the registration's timeout
/// verdict) is applied by the dispatcher of the operation, which knows what it means there.
/// </summary>
internal sealed class FaultPolicy(EventStream events)
{
    /// <summary>Reports one fault of <paramref name="registration"/> deciding <paramref name="operation"/>. Never throws.</summary>
    public void Report(Registration registration, RegistrationFaultKind kind, in OperationTag operation, string reason)
    {
        RegistrationPolicy policy = registration.Policy;
        int consecutive = registration.RecordFault();
        bool disabled = policy.DisableAfterFaults > 0 && consecutive >= policy.DisableAfterFaults && registration.TryDisableForFaults();
        string name = registration.Describe();
        string what = operation.ToString();
        events.WriteRegistrationFault(registration.OwnerName, name, what, KindName(kind), reason,
            policy.DenyOnTimeout ? "deny" : "allow", consecutive, disabled);
        registration.Owner?.Context?.NotifyFault(new RegistrationFaultInfo
        {
            Registration = registration.Cookie,
            RegistrationName = name,
            Kind = kind,
            Operation = what,
            Reason = reason,
            AppliedVerdict = policy.TimeoutVerdict,
            ConsecutiveFaults = consecutive,
            Disabled = disabled,
        });
    }

    /// <summary>A callback threw <paramref name="exception"/>.</summary>
    public void Threw(Registration registration, in OperationTag operation, Exception exception) =>
        Report(registration, RegistrationFaultKind.Threw, in operation, operation.Name + " callback threw " + exception.GetType().Name + ": " + exception.Message);

    /// <summary>A callback returned a verdict the kernel cannot use.</summary>
    public void InvalidVerdict(Registration registration, in OperationTag operation, string what) =>
        Report(registration, RegistrationFaultKind.InvalidVerdict, in operation, operation.Name + " callback " + what);

    private static string KindName(RegistrationFaultKind kind) => kind switch
    {
        RegistrationFaultKind.Threw => "threw",
        RegistrationFaultKind.Overran => "overran",
        _ => "invalid-verdict",
    };
}
