using System;

namespace Palisade.Api;

/// <summary>
/// Handle-operation callbacks on processes and threads, in the manner of ObRegisterCallbacks: a security product
/// sees every handle opened or duplicated to a process or thread and can remove access rights from it.
/// </summary>
/// <remarks>
/// <para>Every guest operation that acts on another process goes through a handle operation with the rights it
/// needs: a signal needs <see cref="ProcessAccessRights.Terminate"/> (SIGKILL, SIGTERM and every other signal),
/// ptrace needs <see cref="ProcessAccessRights.VmWrite"/> | <see cref="ProcessAccessRights.VmRead"/> |
/// <see cref="ProcessAccessRights.SuspendResume"/>, process_vm_readv needs <see cref="ProcessAccessRights.VmRead"/>,
/// process_vm_writev needs <see cref="ProcessAccessRights.VmWrite"/>, pidfd_open needs
/// <see cref="ProcessAccessRights.Synchronize"/>. When a pre callback removes a right the operation needs, the
/// operation fails with <c>EPERM</c>. Each callback is told which operation asks (<see cref="ObjectPreOperationInfo.AccessKind"/>)
/// and, for a signal, which one (<see cref="ObjectPreOperationInfo.Signal"/>). Opens of <c>/proc/PID/mem</c> are not
/// handle operations: they are file opens, which minifilters see.</para>
/// <para><b>Ordering.</b> Pre callbacks run from the highest altitude down; post callbacks from the lowest up. Each
/// pre callback sees the desired access left by the callbacks above it.</para>
/// <para><b>Limits.</b> At most 64 registrations at once; altitudes are unique among object-callback registrations.</para>
/// <para><b>Holding an operation.</b> A pre callback may hold the guest's operation (a signal, a ptrace attach) until it
/// knows the answer: it calls <see cref="PendOperation"/> and returns; the driver completes it from any thread with
/// <see cref="CompletePendedOperation"/>, giving the access to grant, and the remaining callbacks then run. Handles the
/// kernel opens for itself cannot be held.</para>
/// <para><b>Containment.</b> A callback that throws, overruns its 5-second deadline or adds access rights faults: the
/// registration's timeout verdict applies (<see cref="TimeoutVerdict.Allow"/>: no right removed;
/// <see cref="TimeoutVerdict.Deny"/>: every right removed), a <c>driver-fault</c> event names the driver, the registration
/// and the operation, and the driver's fault callbacks are told. The registration is disabled only as its
/// <see cref="CallbackOptions.DisableAfterFaults"/> says.</para>
/// </remarks>
[ApiInfo(ApiArea.Objects, "1.0", ApiState.Draft, "self-protection", "anti-tampering", "EDR")]
public interface IObjectCallbacks
{
    /// <summary>Registers pre and/or post callbacks for handle operations on the object types given.</summary>
    /// <param name="registration">What to register. At least one of the callbacks must be set.</param>
    /// <param name="cookie">On success, names the registration; otherwise default.</param>
    /// <returns>
    /// <see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> when no callback is set, no object type
    /// or no operation is selected; <see cref="Status.InvalidAltitude"/> when the altitude is malformed;
    /// <see cref="Status.AltitudeCollision"/> when another object-callback registration has the same altitude;
    /// <see cref="Status.TooManyRegistrations"/> when 64 are registered.
    /// </returns>
    Status Register(ObjectCallbackRegistration registration, out CallbackCookie cookie);

    /// <summary>Removes a registration. After it returns, none of its callbacks is running and none is called again.</summary>
    /// <remarks>Run-down, as ExWaitForRundownProtectionRelease: no call of its pre or post callbacks starts once the removal began, and
    /// the method returns only after every call that had started has returned. Called from inside one of its callbacks on the
    /// thread that runs it (a callback that removes its own registration), it waits for the calls on other threads only
    /// and does not deadlock: it returns <see cref="Status.Success"/>, and the calling callback then finishes normally
    /// (its verdict is used). An operation whose pre callback ran before the removal gets no post callback from it. Do not call it while holding a lock that its callbacks might take: it waits for them.</remarks>
    /// <param name="cookie">The cookie returned at registration.</param>
    /// <returns><see cref="Status.Success"/>, or <see cref="Status.InvalidHandle"/> when it names no live registration of this driver.</returns>
    Status Unregister(CallbackCookie cookie);

    /// <summary>
    /// Holds the handle operation whose pre callback of this driver runs on the calling thread, to decide later which
    /// rights it gets: call it inside the pre callback and return; complete it from any thread with
    /// <see cref="CompletePendedOperation"/>. What the callback left in <see cref="ObjectPreOperationInfo.DesiredAccess"/> is
    /// ignored for a held operation; the completion gives it. A completion that comes before the callback returned is kept.
    /// </summary>
    /// <param name="info">The operation the pre callback received (its <c>ref</c> parameter, passed on).</param>
    /// <param name="cancelCallback">Told if the kernel ends the hold without a completion; null for no notification.</param>
    /// <param name="pended">On success, the completion handle; otherwise null.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidDeviceState"/> when called outside a pre callback of
    /// this driver, for another operation than the one it received, or a second time in one call;
    /// <see cref="Status.NotSupported"/> when the registration's <see cref="CallbackOptions.MaximumHoldTime"/> is zero, for a
    /// kernel handle, or for an operation that is not a guest's; <see cref="Status.InsufficientResources"/> when 128
    /// operations are held already.</returns>
    Status PendOperation(ref ObjectPreOperationInfo info, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended);

    /// <summary>
    /// Completes a held handle operation with the access it is granted; the callbacks below this one then run with it,
    /// as after a synchronous return. From any thread.
    /// </summary>
    /// <param name="operation">The handle <see cref="PendOperation"/> returned.</param>
    /// <param name="desiredAccess">The access to grant: the desired access the callback saw, or fewer rights.</param>
    /// <returns><see cref="Status.Success"/> when taken; <see cref="Status.InvalidParameter"/> for a null handle, a handle of
    /// another kind, or rights the callback did not see asked for (the hold stays); <see cref="Status.InvalidHandle"/> when
    /// the handle is not one of this driver's; <see cref="Status.AlreadyCompleted"/>; <see cref="Status.IoTimeout"/>;
    /// <see cref="Status.Cancelled"/>; <see cref="Status.InvalidDeviceState"/> when withdrawn. Never throws.</returns>
    Status CompletePendedOperation(IPendedOperation operation, ProcessAccessRights desiredAccess);
}

/// <summary>The object types whose handle operations a registration sees.</summary>
[Flags]
[ApiInfo(ApiArea.Objects, "1.0", ApiState.Draft, "self-protection")]
public enum ObjectTypes
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary>Processes.</summary>
    Process = 1,
    /// <summary>Threads.</summary>
    Thread = 2,
}

/// <summary>The handle operations a registration sees.</summary>
[Flags]
[ApiInfo(ApiArea.Objects, "1.0", ApiState.Draft, "self-protection")]
public enum HandleOperations
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary>A handle is opened (OB_OPERATION_HANDLE_CREATE).</summary>
    Create = 1,
    /// <summary>A handle is duplicated (OB_OPERATION_HANDLE_DUPLICATE), for example a pidfd passed to another process.</summary>
    Duplicate = 2,
}

/// <summary>
/// Which guest operation asked for access to a process or thread (<see cref="ObjectPreOperationInfo.AccessKind"/>):
/// the Linux system call that the handle operation stands for.
/// </summary>
[ApiInfo(ApiArea.Objects, "1.0", ApiState.Draft, "self-protection", "anti-tampering", "EDR")]
public enum ObjectAccessKind
{
    /// <summary>Not a guest's system call: the kernel's own handle, or a handle opened through the kernel's services
    /// without one.</summary>
    Unspecified = 0,

    /// <summary><c>kill(pid, sig)</c>: a signal to a process (<see cref="ObjectPreOperationInfo.Signal"/> says which).</summary>
    Signal = 1,

    /// <summary><c>tkill(tid, sig)</c> or <c>tgkill(tgid, tid, sig)</c>: a signal to one thread.</summary>
    ThreadSignal = 2,

    /// <summary><c>pidfd_send_signal(pidfd, sig, ...)</c>: a signal through a pidfd.</summary>
    PidfdSignal = 3,

    /// <summary><c>pidfd_open(pid, ...)</c>: a pidfd to the process.</summary>
    PidfdOpen = 4,

    /// <summary><c>pidfd_getfd(pidfd, fd, ...)</c>: a copy of one of the process's descriptors.</summary>
    PidfdGetfd = 5,

    /// <summary><c>ptrace(request, pid, ...)</c> on another process: attach, seize, or a request on a tracee.
    /// (<c>PTRACE_TRACEME</c> names the caller itself, and operations on oneself are not handle operations.)</summary>
    Ptrace = 6,

    /// <summary><c>process_vm_readv(pid, ...)</c>: a read of the process's memory.</summary>
    ProcessVmRead = 7,

    /// <summary><c>process_vm_writev(pid, ...)</c>: a write to the process's memory.</summary>
    ProcessVmWrite = 8,
}

/// <summary>Access rights to a process, with the Windows values.</summary>
[Flags]
[ApiInfo(ApiArea.Objects, "1.0", ApiState.Draft, "self-protection")]
public enum ProcessAccessRights : uint
{
    /// <summary>No rights.</summary>
    None = 0,
    /// <summary>Terminate the process or send it any signal.</summary>
    Terminate = 0x0001,
    /// <summary>Create a thread in it.</summary>
    CreateThread = 0x0002,
    /// <summary>Change its address space layout.</summary>
    VmOperation = 0x0008,
    /// <summary>Read its memory.</summary>
    VmRead = 0x0010,
    /// <summary>Write its memory.</summary>
    VmWrite = 0x0020,
    /// <summary>Duplicate its file descriptors (pidfd_getfd).</summary>
    DuplicateHandle = 0x0040,
    /// <summary>Set information such as priority.</summary>
    SetInformation = 0x0200,
    /// <summary>Query information.</summary>
    QueryInformation = 0x0400,
    /// <summary>Stop or continue it, or attach to it for debugging.</summary>
    SuspendResume = 0x0800,
    /// <summary>Query limited information.</summary>
    QueryLimitedInformation = 0x1000,
    /// <summary>Wait for it to exit.</summary>
    Synchronize = 0x0010_0000,
    /// <summary>Every right.</summary>
    AllAccess = 0x001F_FFFF,
}

/// <summary>What an object pre callback sees and may change.</summary>
[ApiInfo(ApiArea.Objects, "1.0", ApiState.Draft, "self-protection")]
public struct ObjectPreOperationInfo
{
    /// <summary>The operation.</summary>
    public HandleOperations Operation { get; init; }

    /// <summary>The type of the target object.</summary>
    public ObjectTypes ObjectType { get; init; }

    /// <summary>The process asking for the handle.</summary>
    public int RequesterProcessId { get; init; }

    /// <summary>The target process (for a thread, the process it belongs to).</summary>
    public int TargetProcessId { get; init; }

    /// <summary>The target thread, or 0 for a process handle.</summary>
    public int TargetThreadId { get; init; }

    /// <summary>True when the kernel opens the handle for itself; such handles are not stripped (changes are ignored).</summary>
    public bool KernelHandle { get; init; }

    /// <summary>The guest operation that asks for the access (a signal, a ptrace, a pidfd, a memory access);
    /// <see cref="ObjectAccessKind.Unspecified"/> for a handle no guest system call asked for.</summary>
    public ObjectAccessKind AccessKind { get; init; }

    /// <summary>For <see cref="ObjectAccessKind.Signal"/>, <see cref="ObjectAccessKind.ThreadSignal"/> and
    /// <see cref="ObjectAccessKind.PidfdSignal"/>: the signal number (1–64; 0 is the existence probe <c>kill(pid, 0)</c>,
    /// which sends nothing). 0 for every other kind.</summary>
    public int Signal { get; init; }

    /// <summary>The access the requester originally asked for.</summary>
    public ProcessAccessRights OriginalDesiredAccess { get; init; }

    /// <summary>
    /// The access that will be granted. A callback may only remove rights: rights added beyond
    /// <see cref="OriginalDesiredAccess"/> are ignored and reported as a <c>driver-fault</c> event.
    /// </summary>
    public ProcessAccessRights DesiredAccess { get; set; }

    /// <summary>
    /// When the operation would time out if this callback held it, on the clock of <see cref="Environment.TickCount64"/>
    /// (milliseconds); 0 when this registration cannot hold it (see <see cref="FileOperation.HoldDeadline"/>). Set by the
    /// kernel before each pre callback; a change has no effect.
    /// </summary>
    public long HoldDeadline { get; set; }
}

/// <summary>What an object post callback sees.</summary>
[ApiInfo(ApiArea.Objects, "1.0", ApiState.Draft, "self-protection", "EDR")]
public readonly struct ObjectPostOperationInfo
{
    /// <summary>The operation.</summary>
    public HandleOperations Operation { get; init; }

    /// <summary>The type of the target object.</summary>
    public ObjectTypes ObjectType { get; init; }

    /// <summary>The process that asked for the handle.</summary>
    public int RequesterProcessId { get; init; }

    /// <summary>The target process.</summary>
    public int TargetProcessId { get; init; }

    /// <summary>The target thread, or 0 for a process handle.</summary>
    public int TargetThreadId { get; init; }

    /// <summary>True when the kernel opened the handle for itself.</summary>
    public bool KernelHandle { get; init; }

    /// <summary>The guest operation that asked for the access, as the pre callbacks saw it.</summary>
    public ObjectAccessKind AccessKind { get; init; }

    /// <summary>The signal number for a signal operation (see <see cref="ObjectPreOperationInfo.Signal"/>); otherwise 0.</summary>
    public int Signal { get; init; }

    /// <summary>The access actually granted, after every pre callback.</summary>
    public ProcessAccessRights GrantedAccess { get; init; }

    /// <summary>
    /// The result the guest's operation got from the kernel: <see cref="Status.AccessDenied"/> when a pre callback removed
    /// a right the operation needs (the guest's call fails with <c>EPERM</c>); <see cref="Status.Success"/> when every
    /// right was granted and the call went on to Linux. Linux then performs it with the guest's own credentials and may
    /// still fail it (<c>ESRCH</c> for a target that exited, <c>EPERM</c> by its own permission checks): that last answer
    /// is not reported, because the kernel lets Linux perform these calls (with the guest's credentials, namespaces and
    /// sandbox, and the sender's identity in the signal) and does not see their return. docs/scenarios.md says what
    /// learning it would cost.
    /// </summary>
    public Status ReturnStatus { get; init; }
}

/// <summary>A pre callback: may remove rights from <see cref="ObjectPreOperationInfo.DesiredAccess"/>.</summary>
/// <param name="info">The callback's own copy of the operation; only its desired access is read back, and only rights
/// removed take effect (callbacks below see the rights left, never another requester, target or original access).</param>
[ApiInfo(ApiArea.Objects, "1.0", ApiState.Draft, "self-protection")]
public delegate void ObjectPreCallback(ref ObjectPreOperationInfo info);

/// <summary>A post callback: observes the access granted and the result the guest's operation got. Called after every
/// pre callback, before the guest's call goes on (or fails).</summary>
/// <param name="info">The completed operation.</param>
[ApiInfo(ApiArea.Objects, "1.0", ApiState.Draft, "EDR")]
public delegate void ObjectPostCallback(in ObjectPostOperationInfo info);

/// <summary>One object-callback registration (OB_CALLBACK_REGISTRATION with one OB_OPERATION_REGISTRATION).</summary>
[ApiInfo(ApiArea.Objects, "1.0", ApiState.Draft, "self-protection")]
public sealed class ObjectCallbackRegistration
{
    /// <summary>The altitude: a decimal number such as <c>"321000"</c> or <c>"321000.5"</c>, unique among object registrations.</summary>
    public required string Altitude { get; init; }

    /// <summary>The object types to see. Must not be <see cref="ObjectTypes.None"/>.</summary>
    public ObjectTypes ObjectTypes { get; init; } = ObjectTypes.Process | ObjectTypes.Thread;

    /// <summary>The operations to see. Must not be <see cref="HandleOperations.None"/>.</summary>
    public HandleOperations Operations { get; init; } = HandleOperations.Create | HandleOperations.Duplicate;

    /// <summary>The pre callback, or null.</summary>
    public ObjectPreCallback? PreOperation { get; init; }

    /// <summary>The post callback, or null.</summary>
    public ObjectPostCallback? PostOperation { get; init; }
}
