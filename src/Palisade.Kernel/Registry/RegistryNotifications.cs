using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Events;

namespace Palisade.Kernel.Registry;

/// <summary>
/// Registry callbacks (CmRegisterCallbackEx): the table by altitude and the path of one registry operation through
/// the pre notifications (highest altitude first), the store, and the post notifications (lowest first).
/// </summary>
internal sealed class RegistryNotifications
{
    public const int Limit = 64;
    private readonly CallbackMonitor _monitor;
    private readonly FaultPolicy _faults;

    [ThreadStatic]
    private static bool[]? t_ranPre;

    public RegistryNotifications(CallbackMonitor monitor, FaultPolicy faults)
    {
        _monitor = monitor;
        _faults = faults;
    }

    public CallbackTable<CallbackRegistration<RegistryCallback>> Callbacks { get; } = new("registry callbacks", Limit, byAltitude: true);

    public Status Register(DriverObject? owner, RegistryCallback? callback, string? altitude, out CallbackCookie cookie)
    {
        cookie = default;
        if (callback is null)
        {
            return Status.InvalidParameter;
        }

        if (!Altitude.TryParse(altitude, out decimal a))
        {
            return Status.InvalidAltitude;
        }

        var r = new CallbackRegistration<RegistryCallback>(owner, callback, a, altitude);
        Status s = Callbacks.Add(r);
        if (s.IsSuccess)
        {
            cookie = r.Cookie;
        }

        return s;
    }

    private static (RegistryNotifyClass Pre, RegistryNotifyClass Post) Classes(RegistryOperation op) => op switch
    {
        RegistryOperation.CreateKey => (RegistryNotifyClass.PreCreateKey, RegistryNotifyClass.PostCreateKey),
        RegistryOperation.OpenKey => (RegistryNotifyClass.PreOpenKey, RegistryNotifyClass.PostOpenKey),
        RegistryOperation.DeleteKey => (RegistryNotifyClass.PreDeleteKey, RegistryNotifyClass.PostDeleteKey),
        RegistryOperation.SetValue => (RegistryNotifyClass.PreSetValue, RegistryNotifyClass.PostSetValue),
        RegistryOperation.DeleteValue => (RegistryNotifyClass.PreDeleteValue, RegistryNotifyClass.PostDeleteValue),
        RegistryOperation.QueryValue => (RegistryNotifyClass.PreQueryValue, RegistryNotifyClass.PostQueryValue),
        RegistryOperation.EnumerateKey => (RegistryNotifyClass.PreEnumerateKey, RegistryNotifyClass.PostEnumerateKey),
        RegistryOperation.EnumerateValue => (RegistryNotifyClass.PreEnumerateValue, RegistryNotifyClass.PostEnumerateValue),
        _ => (RegistryNotifyClass.PreRenameKey, RegistryNotifyClass.PostRenameKey),
    };

    /// <summary>The notification class as faults name it (<c>registry PreSetValue</c>...), made once.</summary>
    private static string NameOf(RegistryNotifyClass c) => s_classNames[(int)c];

    private static readonly string[] s_classNames = Array.ConvertAll(Enum.GetNames<RegistryNotifyClass>(), n => "registry " + n);

    /// <summary>Runs one operation through the callbacks, performing it with <paramref name="perform"/> unless blocked or bypassed.</summary>
    public Status Dispatch(int processId, RegistryRequest request, Func<RegistryRequest, Status> perform, OperationRecord? record)
    {
        CallbackRegistration<RegistryCallback>[] entries = Callbacks.Snapshot;
        bool[] ran = t_ranPre ??= new bool[Limit];
        (RegistryNotifyClass preClass, RegistryNotifyClass postClass) = Classes(request.Operation);
        CallbackMonitor.Slot slot = _monitor.Current;
        var n = new RegistryNotification
        {
            NotifyClass = preClass,
            ProcessId = processId,
            KeyPath = request.KeyPath,
            ValueName = request.ValueName,
            NewName = request.NewName,
            ValueType = request.ValueType,
            Data = request.Data,
            OperationStatus = Status.Success,
        };

        Status status = Status.Success;
        bool bypassed = false;
        int last = -1;
        for (int i = 0; i < entries.Length; i++)
        {
            ran[i] = false;
            CallbackRegistration<RegistryCallback> e = entries[i];
            if (e.Disabled)
            {
                continue;
            }

            Status s;
            Exception? thrown = null;
            var tag = new OperationTag(NameOf(preClass), processId, request.KeyPath);
            if (slot.TryEnter(e, in tag) is not { } frame)
            {
                continue; // Being unregistered: as if it were not registered.
            }

            // Each callback gets its own copy of the notification: it cannot show the callbacks below it another key,
            // value or data than the operation performed. Only its status and, with a bypass, its result are read back.
            RegistryNotification view = n;
            try
            {
                s = e.Callback(ref view);
            }
            catch (Exception ex)
            {
                s = Status.Success;
                thrown = ex;
            }

            if (!slot.Exit(frame) || thrown is not null)
            {
                // The registration's timeout verdict: continue, or block.
                if (thrown is not null)
                {
                    _faults.Threw(e, in tag, thrown);
                }

                s = e.Policy.DenyOnTimeout ? Status.AccessDenied : Status.Success;
            }
            else
            {
                e.RecordSuccess();
            }

            ran[i] = true;
            last = i;
            record?.Verdict(e.OwnerName, s == Status.CallbackBypass ? "bypass" : s.IsError ? "block " + s.Name : "continue");
            if (s == Status.CallbackBypass)
            {
                bypassed = true;
                request.ResultType = view.BypassType;
                request.ResultData = view.BypassData;
                request.Names = view.BypassNames ?? [];
                break;
            }

            if (s.IsError)
            {
                status = s;
                break;
            }
        }

        if (!bypassed && status.IsSuccess)
        {
            status = perform(request);
        }

        var post = new RegistryNotification
        {
            NotifyClass = postClass,
            ProcessId = processId,
            KeyPath = request.KeyPath,
            ValueName = request.ValueName,
            NewName = request.NewName,
            ValueType = request.Operation == RegistryOperation.QueryValue ? request.ResultType : request.ValueType,
            Data = request.Operation == RegistryOperation.QueryValue ? request.ResultData : request.Data,
            OperationStatus = status,
        };
        for (int i = last; i >= 0; i--)
        {
            if (!ran[i])
            {
                continue;
            }

            CallbackRegistration<RegistryCallback> e = entries[i];
            var tag = new OperationTag(NameOf(postClass), processId, request.KeyPath);
            if (slot.TryEnter(e, in tag) is not { } frame)
            {
                continue; // Unregistered since its pre callback: no new call starts.
            }

            bool threw = false;
            RegistryNotification view = post;
            try
            {
                e.Callback(ref view);
            }
            catch (Exception ex)
            {
                threw = true;
                _faults.Threw(e, in tag, ex);
            }

            if (slot.Exit(frame) && !threw)
            {
                e.RecordSuccess();
            }
        }

        return status;
    }
}
