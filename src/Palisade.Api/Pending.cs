using System;

namespace Palisade.Api;

/// <summary>
/// A guest operation that a driver holds to decide it later (a pended operation): the completion handle the driver
/// keeps. The kernel makes one when a pre callback pends the operation it decides
/// (<see cref="IFilterManager.PendPreOperation"/>, <see cref="IProcessCallbacks.PendCreate"/>,
/// <see cref="INetworkFilterEngine.PendClassify"/>, <see cref="IObjectCallbacks.PendOperation"/>); the driver completes it
/// later, from any thread, with the completion method of the same interface
/// (<see cref="IFilterManager.CompletePendedPreOperation"/>, <see cref="IProcessCallbacks.CompletePendedCreate"/>,
/// <see cref="INetworkFilterEngine.CompletePendedClassify"/>, <see cref="IObjectCallbacks.CompletePendedOperation"/>), in the
/// manner of FltCompletePendedPreOperation and FwpsCompleteOperation.
/// </summary>
/// <remarks>
/// <para><b>What waits.</b> While an operation is held, only the guest thread that asked for it waits; every other
/// guest thread is served as usual. The rest of the operation (the callbacks of lower registrations, the operation
/// itself, the post callbacks) goes on after the completion, on a kernel thread, exactly as after a synchronous
/// return of the same verdict.</para>
/// <para><b>How a hold ends.</b> Exactly one of: the driver completes it (<see cref="PendedOperationState.Completed"/>);
/// its deadline passes (<see cref="PendedOperationState.TimedOut"/>: the registration's
/// <see cref="CallbackOptions.TimeoutVerdict"/> applies); the kernel cancels it because the guest thread no longer
/// waits (it was killed, or its process exited), or the registration was removed or its driver unloaded
/// (<see cref="PendedOperationState.Cancelled"/>: for a removed registration the timeout verdict applies); or the callback
/// that pended it returned a verdict of its own instead of the pending value
/// (<see cref="PendedOperationState.Withdrawn"/>: that verdict applies). A timed-out or cancelled hold is reported to the
/// cancel callback given when it was pended.</para>
/// <para><b>Limits.</b> At most 128 operations are held at once across all drivers; a pend beyond that returns
/// <see cref="Status.InsufficientResources"/> and the callback must decide synchronously. A registration holds only if its
/// <see cref="CallbackOptions.MaximumHoldTime"/> is more than zero (<see cref="IDriverContext.SetCallbackOptions"/>), for at
/// most that long. Only a guest's own operation can be held: an operation that a driver's own I/O or the kernel issues
/// (for example an <see cref="IFilterManager.OpenFile(CallbackCookie, string, System.IO.FileAccess, out System.IO.Stream?)"/>
/// inside a callback) cannot.</para>
/// <para><b>Threading.</b> Every member may be read from any thread. The handle stays valid after the hold ended; its
/// <see cref="State"/> says how it ended, and a completion then returns a status saying why nothing changed.</para>
/// </remarks>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "antivirus scanning in a user-mode service", "interactive firewall prompts", "binary authorization with a remote server")]
public interface IPendedOperation
{
    /// <summary>
    /// The operation's id: unique for the life of the kernel, never 0. Cancel notifications, <c>driver-fault</c> events and
    /// the event stream name the operation by it, and a driver can hand it to its user-mode service to name the answer.
    /// </summary>
    long Id { get; }

    /// <summary>Which kind of callback pended it, and so which completion method completes it.</summary>
    PendedOperationKind Kind { get; }

    /// <summary>
    /// When the hold times out, on the clock of <see cref="Environment.TickCount64"/> (milliseconds): the same value as the
    /// <c>HoldDeadline</c> of the operation the callback received.
    /// </summary>
    long Deadline { get; }

    /// <summary>The time left before <see cref="Deadline"/>; <see cref="TimeSpan.Zero"/> once it has passed.</summary>
    TimeSpan Remaining { get; }

    /// <summary>The guest process whose operation is held.</summary>
    int RequesterProcessId { get; }

    /// <summary>The guest thread that waits for the operation.</summary>
    int RequesterThreadId { get; }

    /// <summary>The registration whose callback pended the operation.</summary>
    CallbackCookie Registration { get; }

    /// <summary>Where the hold stands; changes once, from <see cref="PendedOperationState.Held"/> to the state that ended it.</summary>
    PendedOperationState State { get; }
}

/// <summary>The kinds of held operations: which callback pended it and which method completes it.</summary>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "antivirus scanning in a user-mode service", "interactive firewall prompts")]
public enum PendedOperationKind
{
    /// <summary>A minifilter's pre callback (<see cref="IFilterManager.PendPreOperation"/>); completed with
    /// <see cref="IFilterManager.CompletePendedPreOperation"/>.</summary>
    FilePreOperation,

    /// <summary>A process-create callback (<see cref="IProcessCallbacks.PendCreate"/>); completed with
    /// <see cref="IProcessCallbacks.CompletePendedCreate"/>.</summary>
    ProcessCreate,

    /// <summary>A callout's classify function (<see cref="INetworkFilterEngine.PendClassify"/>); completed with
    /// <see cref="INetworkFilterEngine.CompletePendedClassify"/>.</summary>
    NetworkClassify,

    /// <summary>An object pre callback (<see cref="IObjectCallbacks.PendOperation"/>); completed with
    /// <see cref="IObjectCallbacks.CompletePendedOperation"/>.</summary>
    ObjectPreOperation,
}

/// <summary>Where a held operation stands.</summary>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "antivirus scanning in a user-mode service", "interactive firewall prompts")]
public enum PendedOperationState
{
    /// <summary>Held: the guest thread waits for the completion.</summary>
    Held,

    /// <summary>The driver completed it; its verdict applied.</summary>
    Completed,

    /// <summary>Its deadline passed first; the registration's timeout verdict applied.</summary>
    TimedOut,

    /// <summary>
    /// The kernel cancelled it: the guest thread no longer waits (killed, or its process gone), or the registration was
    /// removed or its driver unloaded (then the timeout verdict applied to the guest).
    /// </summary>
    Cancelled,

    /// <summary>The callback that pended it returned a verdict of its own instead of the pending value; that verdict applied.</summary>
    Withdrawn,
}

/// <summary>
/// Told that the kernel ended a hold without the driver's completion: <see cref="IPendedOperation.State"/> is
/// <see cref="PendedOperationState.TimedOut"/> or <see cref="PendedOperationState.Cancelled"/>. Called once, on a worker
/// thread of the driver (as a work item, see <see cref="IDriverContext.QueueWorkItem"/>), never on the thread of the held
/// operation; not called once the driver's <see cref="IDriver.Unload"/> has begun.
/// </summary>
/// <param name="operation">The handle the pend returned.</param>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "antivirus scanning in a user-mode service", "interactive firewall prompts")]
public delegate void PendedOperationCancelCallback(IPendedOperation operation);

/// <summary>The verdict the kernel applies for a registration when its callback cannot give one in time.</summary>
/// <remarks>
/// What each verdict means for each kind of callback (allow / deny):
/// <list type="bullet">
/// <item><description>minifilter pre callback: <see cref="PreOperationStatus.SuccessNoCallback"/> / complete with
/// <see cref="Status.AccessDenied"/> (<c>EACCES</c>);</description></item>
/// <item><description>minifilter post-create callback: the open stands / the open is cancelled with
/// <see cref="Status.AccessDenied"/> (other post callbacks cannot change an outcome);</description></item>
/// <item><description>process-create callback: <see cref="Status.Success"/> / <see cref="Status.AccessDenied"/>;</description></item>
/// <item><description>callout: <see cref="ClassifyResult.Continue"/>, the callout has no say / <see cref="ClassifyResult.Block"/>;</description></item>
/// <item><description>object pre callback: no right removed / every right removed (the operation fails with <c>EPERM</c>);</description></item>
/// <item><description>registry pre callback: <see cref="Status.Success"/>, continue / <see cref="Status.AccessDenied"/>;</description></item>
/// <item><description>notifications (exit, thread, image load, post callbacks): no verdict to apply.</description></item>
/// </list>
/// </remarks>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "every driver")]
public enum TimeoutVerdict
{
    /// <summary>The operation goes on as if the callback had not objected (fail open).</summary>
    Allow,

    /// <summary>The operation is denied (fail closed).</summary>
    Deny,
}

/// <summary>
/// A registration's policy for time and faults (<see cref="IDriverContext.SetCallbackOptions"/>): how long it may hold an
/// operation, the verdict when it cannot answer in time, and after how many faults in a row the kernel disables it.
/// </summary>
/// <remarks>
/// <para>A registration starts with <see cref="Default"/>: it cannot hold operations, the timeout verdict is
/// <see cref="TimeoutVerdict.Allow"/>, and it is never disabled for faults.</para>
/// <para><b>Faults.</b> A callback that throws, that has not returned when its own time passed 5 seconds (the synchronous deadline, the same for every registration: the time since it was
/// called minus the time spent in other registrations' callbacks nested in it, which its own I/O may meet), or that returns a verdict the kernel cannot use, faults: the kernel applies
/// <see cref="TimeoutVerdict"/> to the operation, writes a <c>driver-fault</c> event naming the driver, the registration
/// and the operation, and tells the driver's fault callbacks (<see cref="IDriverContext.RegisterFaultCallback"/>). A
/// callback that overruns is detected within a monitor period of its deadline (an eighth of it, at most 250 ms; the
/// event and the notification come then); it is not interrupted, and its guest gets the timeout verdict when the callback
/// returns, whatever it returned. A hold that times out is not a fault: the driver chose its length.</para>
/// </remarks>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "every driver")]
public sealed class CallbackOptions
{
    /// <summary>The longest <see cref="MaximumHoldTime"/> the kernel accepts: 10 minutes.</summary>
    public static TimeSpan MaximumHoldTimeLimit => TimeSpan.FromMinutes(10);

    /// <summary>The largest <see cref="DisableAfterFaults"/> the kernel accepts.</summary>
    public const int DisableAfterFaultsLimit = 1000;

    /// <summary>The options every registration starts with: no holds, allow on timeout, never disabled.</summary>
    public static CallbackOptions Default { get; } = new();

    /// <summary>
    /// How long one operation may be held, from the moment the kernel began deciding it; <see cref="TimeSpan.Zero"/> (the
    /// default) when the registration never holds. At most <see cref="MaximumHoldTimeLimit"/>; only for callbacks that
    /// can pend (minifilter pre callbacks, process-create callbacks, callouts, object pre callbacks).
    /// </summary>
    public TimeSpan MaximumHoldTime { get; init; }

    /// <summary>The verdict for an operation whose hold times out or whose callback faults; <see cref="TimeoutVerdict.Allow"/> by default.</summary>
    public TimeoutVerdict TimeoutVerdict { get; init; }

    /// <summary>
    /// After how many faults in a row the kernel disables the registration (its callbacks are skipped until
    /// <see cref="IDriverContext.EnableRegistration"/>); 0 (the default) never disables it. 0 to
    /// <see cref="DisableAfterFaultsLimit"/>. A call that returns without fault resets the count.
    /// </summary>
    public int DisableAfterFaults { get; init; }
}

/// <summary>What went wrong in a fault.</summary>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "every driver")]
public enum RegistrationFaultKind
{
    /// <summary>The callback threw an exception.</summary>
    Threw,

    /// <summary>The callback had not returned when its own time passed its deadline (5 seconds; see <see cref="CallbackOptions"/>).</summary>
    Overran,

    /// <summary>
    /// The callback returned a verdict the kernel cannot use (a value its type does not define, the pending value without a
    /// pend, a create completed with success, access rights added).
    /// </summary>
    InvalidVerdict,
}

/// <summary>A fault of one of the driver's registrations, as its fault callbacks see it.</summary>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "every driver")]
public readonly struct RegistrationFaultInfo
{
    /// <summary>The registration that faulted.</summary>
    public CallbackCookie Registration { get; init; }

    /// <summary>The registration in words, as the <c>driver-fault</c> event names it (for example <c>minifilter antivirus at 325000</c>).</summary>
    public string RegistrationName { get; init; }

    /// <summary>What went wrong.</summary>
    public RegistrationFaultKind Kind { get; init; }

    /// <summary>The operation being decided, in words (for example <c>pre-create /home/u/a.txt by process 4242</c>).</summary>
    public string Operation { get; init; }

    /// <summary>What happened, in one line (the exception's type and message, the deadline that passed, the bad verdict).</summary>
    public string Reason { get; init; }

    /// <summary>The verdict the kernel applied to the operation (the registration's <see cref="CallbackOptions.TimeoutVerdict"/>).</summary>
    public TimeoutVerdict AppliedVerdict { get; init; }

    /// <summary>How many faults in a row the registration has had, this one included.</summary>
    public int ConsecutiveFaults { get; init; }

    /// <summary>True when this fault made the kernel disable the registration (<see cref="CallbackOptions.DisableAfterFaults"/>).</summary>
    public bool Disabled { get; init; }
}

/// <summary>
/// Told of a fault of one of the driver's registrations (<see cref="IDriverContext.RegisterFaultCallback"/>). Called on a
/// worker thread of the driver (as a work item), never on the thread that faulted, in the order the faults happened.
/// </summary>
/// <param name="fault">The fault.</param>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "every driver")]
public delegate void RegistrationFaultCallback(in RegistrationFaultInfo fault);

/// <summary>Work a driver queued to run later on one of its worker threads (<see cref="IDriverContext.QueueWorkItem"/>).</summary>
/// <param name="state">The state given when the item was queued.</param>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "antivirus scanning", "every driver that completes held operations")]
public delegate void WorkItemCallback(object? state);
