using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Events;
using Palisade.Kernel.Processes;

namespace Palisade.Kernel.Objects;

/// <summary>An object-callback registration (ObRegisterCallbacks).</summary>
internal sealed class ObjectCallbackEntry : Registration
{
    public ObjectCallbackEntry(DriverObject? owner, decimal altitude, ObjectCallbackRegistration r)
        : base(owner, altitude, r.Altitude)
    {
        Types = r.ObjectTypes;
        Operations = r.Operations;
        Pre = r.PreOperation;
        Post = r.PostOperation;
    }

    public ObjectTypes Types { get; }

    public HandleOperations Operations { get; }

    public ObjectPreCallback? Pre { get; }

    public ObjectPostCallback? Post { get; }

    public override Delegate? PrimaryCallback => (Delegate?)Pre ?? Post;

    protected override void AppendCallbacks(ref Guard.GuardHasher hasher)
    {
        hasher.Add(Pre);
        hasher.Add(Post);
    }

    /// <summary>An object pre callback can hold the handle operation it decides.</summary>
    public override bool CanPend => Pre is not null;

    public override string Describe() => "object callbacks at " + AltitudeText;

    /// <summary>True when the registration is live and selected this object type and operation.</summary>
    public bool Applies(ObjectTypes type, HandleOperations operation) =>
        !Disabled && (Types & type) != 0 && (Operations & operation) != 0;
}

/// <summary>
/// The object manager: the object directory (named objects), the object types and their procedures, and handle
/// creation and duplication for processes and threads with the object callbacks applied.
/// </summary>
internal sealed unsafe class ObjectManager : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, KernelObject> _directory = new(StringComparer.Ordinal);
    private readonly CallbackMonitor _monitor;
    private readonly FaultPolicy _faults;
    private readonly HoldTable _holds;

    /// <summary>This thread's description of a handle operation that can be held (reused).</summary>
    [ThreadStatic]
    private static PendContext? t_pend;

    public ObjectManager(CallbackMonitor monitor, FaultPolicy faults, HoldTable holds)
    {
        _monitor = monitor;
        _faults = faults;
        _holds = holds;
        ProcessType = new ObjectType("Process", 0, &OnOpen, &OnClose, &OnDelete);
        ThreadType = new ObjectType("Thread", 1, &OnOpen, &OnClose, &OnDelete);
        DriverType = new ObjectType("Driver", 2, &OnOpen, &OnClose, &OnDelete);
        Types = [ProcessType, ThreadType, DriverType];
    }

    public ObjectType ProcessType { get; }

    public ObjectType ThreadType { get; }

    public ObjectType DriverType { get; }

    public ObjectType[] Types { get; }

    public CallbackTable<ObjectCallbackEntry> Callbacks { get; } = new("object callbacks", 64, byAltitude: true);

    /// <summary>Counts of type-procedure calls, observable by tests and the guard's soak.</summary>
    public static long OpenCount, CloseCount, DeleteCount;

    private static void OnOpen(KernelObject o, int processId) => Interlocked.Increment(ref OpenCount);

    private static void OnClose(KernelObject o, int processId) => Interlocked.Increment(ref CloseCount);

    private static void OnDelete(KernelObject o) => Interlocked.Increment(ref DeleteCount);

    public Status InsertNamed(string name, KernelObject o)
    {
        if (string.IsNullOrEmpty(name) || name[0] != '\\')
        {
            return Status.ObjectNameInvalid;
        }

        lock (_lock)
        {
            if (!_directory.TryAdd(name, o))
            {
                return Status.ObjectNameCollision;
            }
        }

        o.AddReference();
        return Status.Success;
    }

    public Status LookupNamed(string name, out KernelObject? o)
    {
        lock (_lock)
        {
            if (_directory.TryGetValue(name, out o))
            {
                o.AddReference();
                return Status.Success;
            }
        }

        return Status.ObjectNameNotFound;
    }

    public Status RemoveNamed(string name)
    {
        KernelObject? o;
        lock (_lock)
        {
            if (!_directory.Remove(name, out o))
            {
                return Status.ObjectNameNotFound;
            }
        }

        o.Release();
        return Status.Success;
    }

    /// <summary>
    /// Creates (or duplicates) a handle in <paramref name="requester"/>'s table to a process or thread, after the
    /// pre callbacks (highest altitude first) had their say on the access, then runs the post callbacks with the result
    /// the operation gets: <see cref="Status.Success"/> when every right asked for was granted, else
    /// <see cref="Status.AccessDenied"/> (a handle is still made, with the rights left, when one is kept).
    /// </summary>
    public Status OpenHandle(GuestProcess? requester, int requesterPid, KernelObject target, in ObjectAccess access,
        OperationRecord? record, out int handle, out ProcessAccessRights granted, int guestThread = 0)
    {
        HandleOperations operation = access.Operation;
        ProcessAccessRights desired = access.Desired;
        bool kernelHandle = access.KernelHandle;
        handle = 0;
        ObjectTypes type = target is GuestThread ? ObjectTypes.Thread : ObjectTypes.Process;
        int targetPid = target is GuestThread t ? t.ProcessId : ((GuestProcess)target).ProcessId;
        int targetTid = target is GuestThread tt ? tt.ThreadId : 0;
        var info = new ObjectPreOperationInfo
        {
            Operation = operation,
            ObjectType = type,
            RequesterProcessId = requesterPid,
            TargetProcessId = targetPid,
            TargetThreadId = targetTid,
            KernelHandle = kernelHandle,
            AccessKind = access.Kind,
            Signal = access.Signal,
            OriginalDesiredAccess = desired,
            DesiredAccess = desired,
        };

        ObjectCallbackEntry[] entries = Callbacks.Snapshot;
        CallbackMonitor.Slot slot = _monitor.Current;
        bool holdable = !kernelHandle && guestThread != 0 && slot.Depth == 0;
        long holdBase = holdable ? Environment.TickCount64 : 0;
        foreach (ObjectCallbackEntry e in entries)
        {
            if (e.Pre is null || !e.Applies(type, operation))
            {
                continue;
            }

            ProcessAccessRights before = info.DesiredAccess;
            long hold = holdable ? e.Policy.HoldMilliseconds : 0;
            PendContext? pend = null;
            if (hold != 0)
            {
                pend = t_pend ??= new PendContext { Kind = PendedOperationKind.ObjectPreOperation };
                pend.ProcessId = requesterPid;
                pend.ThreadId = guestThread;
                pend.Token = null;
                pend.AccessLimit = before;
                pend.Deadline = holdBase + hold;
            }

            info.HoldDeadline = pend?.Deadline ?? 0;
            Exception? thrown = null;
            var tag = new OperationTag(operation == HandleOperations.Duplicate ? "object pre-duplicate of process" : "object pre-open of process", requesterPid, null, targetPid);
            if (slot.TryEnter(e, in tag, pend) is not { } frame)
            {
                continue; // Being unregistered: as if it were not registered.
            }

            // The callback decides on its own copy: only the access it leaves is read back, so it cannot show the
            // callbacks below it another requester, target or original access.
            ObjectPreOperationInfo view = info;
            try
            {
                e.Pre(ref view);
            }
            catch (Exception ex)
            {
                thrown = ex;
            }

            info.DesiredAccess = view.DesiredAccess;

            bool inTime = slot.Exit(frame);
            HeldOperation? held = frame.Held;
            frame.Held = null;
            if (thrown is not null || !inTime)
            {
                if (held is not null)
                {
                    _holds.Withdraw(held);
                }

                if (thrown is not null)
                {
                    _faults.Threw(e, in tag, thrown);
                }

                info.DesiredAccess = e.Policy.DenyOnTimeout ? ProcessAccessRights.None : before;
            }
            else if (held is not null)
            {
                info.DesiredAccess = WaitForAccess(e, held, before, record);
            }
            else if ((info.DesiredAccess & ~before) != 0)
            {
                _faults.InvalidVerdict(e, in tag, "tried to add access rights; the addition was ignored");
                info.DesiredAccess &= before;
            }
            else
            {
                e.RecordSuccess();
            }

            if (kernelHandle)
            {
                info.DesiredAccess = desired;
            }

            record?.Verdict(e.OwnerName, info.DesiredAccess == before ? "unchanged" : "stripped " + (before & ~info.DesiredAccess));
        }

        granted = info.DesiredAccess;
        Status status = (granted & desired) == desired ? Status.Success : Status.AccessDenied;
        if (requester is not null)
        {
            target.AddReference();
            handle = requester.Handles.Insert(new HandleEntry(target, granted, kernelHandle));
            target.Type.InvokeOpen(target, requesterPid);
        }

        var post = new ObjectPostOperationInfo
        {
            Operation = operation,
            ObjectType = type,
            RequesterProcessId = requesterPid,
            TargetProcessId = targetPid,
            TargetThreadId = targetTid,
            KernelHandle = kernelHandle,
            AccessKind = access.Kind,
            Signal = access.Signal,
            GrantedAccess = granted,
            ReturnStatus = status,
        };
        for (int i = entries.Length - 1; i >= 0; i--)
        {
            ObjectCallbackEntry e = entries[i];
            if (e.Post is null || !e.Applies(type, operation))
            {
                continue;
            }

            var postTag = new OperationTag("object post-operation on process", requesterPid, null, targetPid);
            if (slot.TryEnter(e, in postTag) is not { } frame)
            {
                continue;
            }

            bool threw = false;
            try
            {
                e.Post(in post);
            }
            catch (Exception ex)
            {
                threw = true;
                _faults.Threw(e, in postTag, ex);
            }

            if (slot.Exit(frame) && !threw)
            {
                e.RecordSuccess();
            }
        }

        return status;
    }

    /// <summary>The access a held handle operation ends with: the completion's, the timeout verdict's, or none once the guest is gone.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private ProcessAccessRights WaitForAccess(ObjectCallbackEntry e, HeldOperation held, ProcessAccessRights before, OperationRecord? record)
    {
        record?.Verdict(e.OwnerName, "pending " + held.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        switch (_holds.Wait(held))
        {
            case PendedOperationState.Completed:
                e.RecordSuccess();
                return held.GrantedAccess;
            case PendedOperationState.Cancelled when !held.RegistrationRemoved:
                return ProcessAccessRights.None;
            default:
                record?.Verdict(e.OwnerName, "timeout");
                return e.Policy.DenyOnTimeout ? ProcessAccessRights.None : before;
        }
    }

    public Status CloseHandle(GuestProcess owner, int handle)
    {
        if (!owner.Handles.Remove(handle, out HandleEntry e))
        {
            return Status.InvalidHandle;
        }

        e.Object.Type.InvokeClose(e.Object, owner.ProcessId);
        e.Object.Release();
        return Status.Success;
    }

    public void Dispose()
    {
        foreach (ObjectType t in Types)
        {
            t.Dispose();
        }
    }
}

/// <summary>What a handle operation asks for: the operation, the rights, the guest system call it stands for and, for a
/// signal, its number; and whether the kernel opens the handle for itself.</summary>
internal readonly struct ObjectAccess(HandleOperations operation, ProcessAccessRights desired, ObjectAccessKind kind = ObjectAccessKind.Unspecified,
    int signal = 0, bool kernelHandle = false)
{
    public HandleOperations Operation { get; } = operation;

    public ProcessAccessRights Desired { get; } = desired;

    public ObjectAccessKind Kind { get; } = kind;

    public int Signal { get; } = signal;

    public bool KernelHandle { get; } = kernelHandle;
}
