// Drivers' parameters while they run: IDriverContext.Parameters follows the registry, and the driver's
// ParametersChangedCallback registrations are told of each change.
//
// A committed registry change that may touch a driver's Parameters key schedules a check for that driver on the
// thread pool. Checks of one driver run one at a time (a flag per driver), so its callbacks never run concurrently and
// a driver whose callback hangs delays only its own later notifications. A check reads the key through the registry
// services (so the registry callbacks see the read, as at load), puts the --param overrides over it, and compares with
// what the driver was last shown; only a difference replaces the context's snapshot and calls the callbacks.
using System.Collections.ObjectModel;
using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Registry;

internal sealed class ParameterNotifications
{
    public const int Limit = 64;

    private static readonly IReadOnlyDictionary<string, string> s_none = new ReadOnlyDictionary<string, string>(new Dictionary<string, string>());

    private readonly PalisadeKernel _kernel;

    public ParameterNotifications(PalisadeKernel kernel) => _kernel = kernel;

    public CallbackTable<CallbackRegistration<ParametersChangedCallback>> Callbacks { get; } = new("parameters-changed callbacks", Limit, byAltitude: false);

    public Status Register(DriverObject owner, ParametersChangedCallback? callback, out CallbackCookie cookie)
    {
        cookie = default;
        if (callback is null)
        {
            return Status.InvalidParameter;
        }

        var r = new CallbackRegistration<ParametersChangedCallback>(owner, callback);
        Status s = Callbacks.Add(r);
        if (s.IsSuccess)
        {
            cookie = r.Cookie;
        }

        return s;
    }

    /// <summary>The effective parameters of a driver: its Parameters key's string values, with the overrides over them.</summary>
    public IReadOnlyDictionary<string, string> Read(string driver, IReadOnlyDictionary<string, string> overrides)
    {
        Dictionary<string, string> values = new RegistryClient(_kernel, processId: 0).ReadParameters(driver);
        foreach (KeyValuePair<string, string> o in overrides)
        {
            values[o.Key] = o.Value;
        }

        return values.Count == 0 ? s_none : new ReadOnlyDictionary<string, string>(values);
    }

    /// <summary>
    /// After a committed change of the registry (<paramref name="change"/>; null when anything may have changed, as
    /// after a copy of the registry was replaced): schedules a check of every driver whose parameters it may touch.
    /// </summary>
    public void RegistryChanged(RegistryRequest? change)
    {
        foreach (DriverObject d in _kernel.Drivers.Snapshot())
        {
            if (d.Context is { } context && (change is null || Touches(change, RegistryClient.ParametersKey(d.Name))))
            {
                if (!context.Started)
                {
                    // Loading: Started reports it once Load has returned. Looked at again after the note, so that a
                    // driver started in between is not missed.
                    context.NoteChangeBeforeStart();
                    if (!context.Started)
                    {
                        continue;
                    }
                }

                Schedule(context);
            }
        }
    }

    /// <summary>Called once a driver's Load has returned success: marks it started and, if its parameters may have
    /// changed while Load ran, checks them.</summary>
    public void Started(DriverContext context)
    {
        context.MarkStarted();
        if (context.TakeChangeBeforeStart())
        {
            Schedule(context);
        }
    }

    /// <summary>Schedules a check of one driver's parameters.</summary>
    public void Schedule(DriverContext context)
    {
        if (context.RequestParameterCheck())
        {
            ThreadPool.UnsafeQueueUserWorkItem(static state => state.Notifications.Run(state.Context), (Notifications: this, Context: context), preferLocal: false);
        }
    }

    /// <summary>Whether a change at <c>change.KeyPath</c> can change the values of the key <paramref name="key"/>.</summary>
    internal static bool Touches(RegistryRequest change, string key)
    {
        if (IsAtOrBelow(key, change.KeyPath))
        {
            // The key itself (a value set or deleted, the key created or deleted), or a parent deleted or renamed.
            return true;
        }

        if (change.Operation == RegistryOperation.RenameKey && change.NewName is not null)
        {
            int slash = change.KeyPath.LastIndexOf('\\');
            return slash > 0 && IsAtOrBelow(key, string.Concat(change.KeyPath.AsSpan(0, slash + 1), change.NewName));
        }

        return false;
    }

    private static bool IsAtOrBelow(string key, string path) =>
        key.Length >= path.Length && key.StartsWith(path, StringComparison.OrdinalIgnoreCase)
        && (key.Length == path.Length || key[path.Length] == '\\');

    private void Run(DriverContext context)
    {
        do
        {
            context.TakeParameterRequest();
            if (context.Started && context.Valid)
            {
                Check(context);
            }
        }
        while (context.ParameterCheckDone());
    }

    private void Check(DriverContext context)
    {
        IReadOnlyDictionary<string, string> previous = context.Parameters;
        IReadOnlyDictionary<string, string> now = Read(context.DriverName, context.Overrides);
        List<string> changed = Differences(previous, now);
        if (changed.Count == 0)
        {
            return;
        }

        context.ReplaceParameters(now);
        var change = new ParametersChange(now, previous, changed);
        Status first = Status.Success;
        CallbackMonitor.Slot slot = _kernel.Monitor.Current;
        foreach (CallbackRegistration<ParametersChangedCallback> r in Callbacks.Snapshot)
        {
            if (r.Owner != context.Driver || r.Disabled)
            {
                continue;
            }

            if (!context.Started || !context.Valid || Array.IndexOf(Callbacks.Snapshot, r) < 0)
            {
                // Unloading, or unregistered since the snapshot was taken: no new call starts.
                continue;
            }

            Status s;
            var tag = new OperationTag("parameters-changed", 0, context.DriverName);
            if (slot.TryEnter(r, in tag) is not { } frame)
            {
                continue;
            }

            try
            {
                s = r.Callback(in change);
            }
            catch (Exception ex)
            {
                s = Status.CallbackFaulted;
                _kernel.Faults.Threw(r, in tag, ex);
            }

            if (!slot.Exit(frame))
            {
                s = Status.IoTimeout;
            }
            else if (s != Status.CallbackFaulted)
            {
                r.RecordSuccess();
            }

            if (first.IsSuccess && s.IsError)
            {
                first = s;
            }
        }

        _kernel.Events.WriteParameters(context.DriverName, changed, first);
    }

    private static List<string> Differences(IReadOnlyDictionary<string, string> before, IReadOnlyDictionary<string, string> after)
    {
        var names = new List<string>();
        foreach (KeyValuePair<string, string> kv in after)
        {
            if (!before.TryGetValue(kv.Key, out string? old) || !string.Equals(old, kv.Value, StringComparison.Ordinal))
            {
                names.Add(kv.Key);
            }
        }

        foreach (string name in before.Keys)
        {
            if (!after.ContainsKey(name))
            {
                names.Add(name);
            }
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }
}
