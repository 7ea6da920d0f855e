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
    private readonly EventStream _events;

    public ObjectManager(CallbackMonitor monitor, EventStream events)
    {
        _monitor = monitor;
        _events = events;
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
    /// pre callbacks (highest altitude first) had their say on the access, then runs the post callbacks.
    /// </summary>
    public Status OpenHandle(GuestProcess? requester, int requesterPid, KernelObject target, HandleOperations operation,
        ProcessAccessRights desired, bool kernelHandle, OperationRecord? record, out int handle, out ProcessAccessRights granted)
    {
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
            OriginalDesiredAccess = desired,
            DesiredAccess = desired,
        };

        ObjectCallbackEntry[] entries = Callbacks.Snapshot;
        CallbackMonitor.Slot slot = _monitor.Current;
        foreach (ObjectCallbackEntry e in entries)
        {
            if (e.Pre is null || !e.Applies(type, operation))
            {
                continue;
            }

            ProcessAccessRights before = info.DesiredAccess;
            slot.Enter(e);
            try
            {
                e.Pre(ref info);
            }
            catch (Exception ex)
            {
                info.DesiredAccess = before;
                _events.WriteDriverFault(e.OwnerName, "object pre callback threw " + ex.GetType().Name + ": " + ex.Message);
            }

            if (!slot.Exit())
            {
                info.DesiredAccess = before;
            }

            if ((info.DesiredAccess & ~before) != 0)
            {
                _events.WriteDriverFault(e.OwnerName, "object pre callback tried to add access rights; the addition was ignored");
                info.DesiredAccess &= before;
            }

            if (kernelHandle)
            {
                info.DesiredAccess = desired;
            }

            record?.Verdict(e.OwnerName, info.DesiredAccess == before ? "unchanged" : "stripped " + (before & ~info.DesiredAccess));
        }

        granted = info.DesiredAccess;
        Status status = Status.Success;
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

            slot.Enter(e);
            try
            {
                e.Post(in post);
            }
            catch (Exception ex)
            {
                _events.WriteDriverFault(e.OwnerName, "object post callback threw " + ex.GetType().Name + ": " + ex.Message);
            }

            slot.Exit();
        }

        return status;
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
