// The driver host's side: loads one package with the kernel's own loader (signature, manifest, verifier), gives the
// driver an IDriverContext whose every call is a request to the kernel, and runs the driver's callbacks when the kernel
// sends them. It holds nothing of the kernel's: the operation it decides on arrives by value, the file it scans is read
// by the kernel, the verdict cache keeps the host's verdicts under numbers.
using System.Collections.Concurrent;
using System.Net.Sockets;
using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Isolation;

internal sealed partial class DriverHost : IIsolationHandler
{
    private readonly LoadedPackage? _loaded;
    private readonly DriverLoadResult _result;
    private readonly RemoteDriverContext _context;
    private readonly ManualResetEventSlim _done = new();

    private DriverHost(LoadedPackage? loaded, DriverLoadResult result, IsolationChannel channel)
    {
        _loaded = loaded;
        _result = result;
        _context = new RemoteDriverContext(loaded?.Manifest.Name ?? "?", channel);
    }

    /// <summary>
    /// Runs a driver host on the connected socket <paramref name="socketFd"/> until the kernel unloads the driver or goes
    /// away; returns the process's exit status. <paramref name="confine"/> runs once the package and the trust store are
    /// read and verified, before any of the package's code loads (and, for a package refused, before the host answers).
    /// </summary>
    public static int Run(int socketFd, string packageDirectory, string home, KernelFlavor flavor, byte[] verifiedDigest, Action confine)
    {
        ArgumentNullException.ThrowIfNull(confine);
        bool confined = false;
        void ConfineOnce()
        {
            if (!confined)
            {
                confined = true;
                confine();
            }
        }

        var loader = new DriverLoader(flavor, TrustStore.ForHome(home));
        DriverLoadResult result = loader.Load(packageDirectory, verifiedDigest, ConfineOnce, out LoadedPackage? loaded);
        ConfineOnce();
        var socket = new Socket(new SafeSocketHandle(socketFd, ownsHandle: true));
        DriverHost host = null!;
        var channel = new IsolationChannel(socket, kernelSide: false, new Forward(() => host), Timeout.InfiniteTimeSpan);
        host = new DriverHost(loaded, result, channel);
        channel.ServeNotificationsInOrder(NotificationQueueLimit);
        channel.Start(_ => host._done.Set());
        host._done.Wait();
        return 0;
    }

    /// <summary>The handler exists before the host that it forwards to.</summary>
    private sealed class Forward(Func<DriverHost> host) : IIsolationHandler, INotificationHandler
    {
        public void Serve(Conversation conversation, IsolationOp op, ref RecordReader arguments) => host().Serve(conversation, op, ref arguments);

        public bool Notify(IsolationOp op, ref RecordReader arguments) => host().Notify(op, ref arguments);
    }

    public void Serve(Conversation c, IsolationOp op, ref RecordReader a)
    {
        switch (op)
        {
            case IsolationOp.Load:
            {
                Dictionary<string, string> parameters = a.Map();
                if (a.Finish().IsError)
                {
                    return;
                }

                _context.SetParameters(parameters);
                Status s;
                string message = _result.Message;
                if (_loaded is null)
                {
                    s = _result.Status;
                }
                else
                {
                    s = _loaded.Start(_context, static () => { }, out Exception? fault);
                    if (fault is not null)
                    {
                        message = "Load threw " + fault.GetType().Name + ": " + fault.Message;
                    }
                }

                RecordWriter w = c.BeginReply(s);
                w.String(message);
                c.Reply(ref w);
                return;
            }

            case IsolationOp.Unload:
            {
                if (a.Finish().IsError)
                {
                    return;
                }

                _ = c.Channel.WaitForNotifications(Timeout.Infinite);
                Status s = _loaded is { IsUnloaded: false } l ? l.Unload(static () => { }).Status : Status.Success;
                c.Reply(s);
                _done.Set();
                return;
            }

            case IsolationOp.FilePre:
            case IsolationOp.FilePost:
            {
                int registration = a.I32();
                FileOperation operation = IsolationCodec.ReadFileOperation(ref a);
                long token = op == IsolationOp.FilePost ? a.I64() : 0;
                if (a.Finish().IsError)
                {
                    return;
                }

                _context.Files.Run(c, op, registration, ref operation, token);
                return;
            }

            case IsolationOp.HoldEnded:
            {
                long id = a.I64();
                PendedOperationState state = a.Enum<PendedOperationState>();
                if (a.Finish().IsSuccess)
                {
                    _context.Holds.HoldEnded(c, id, state);
                }

                return;
            }

            case IsolationOp.RegistrationFault:
            {
                int registration = a.I32();
                RegistrationFaultInfo fault = IsolationCodec.ReadFault(ref a);
                if (a.Finish().IsSuccess)
                {
                    _context.RunCallback(c, registration, (object callback) =>
                    {
                        ((RegistrationFaultCallback)callback)(in fault);
                        return Status.Success;
                    });
                }

                return;
            }

            case IsolationOp.ObjectPre:
            {
                int registration = a.I32();
                ObjectPreOperationInfo info = ObjectCodec.ReadPre(ref a);
                if (a.Finish().IsSuccess)
                {
                    _context.Objects.RunPre(c, registration, ref info);
                }

                return;
            }

            case IsolationOp.PortConnect:
            {
                int registration = a.I32();
                long port = a.I64();
                long id = a.I64();
                int pid = a.I32();
                uint uid = a.U32();
                uint gid = a.U32();
                ReadOnlySpan<byte> bytes = a.Data();
                if (a.Finish().IsSuccess)
                {
                    _context.Ports.Connected(c, registration, port, id, pid, uid, gid, bytes);
                }

                return;
            }

            case IsolationOp.PortDisconnect:
            {
                int registration = a.I32();
                long id = a.I64();
                if (a.Finish().IsSuccess)
                {
                    _context.Ports.Disconnected(c, registration, id);
                }

                return;
            }

            case IsolationOp.PortMessage:
            {
                int registration = a.I32();
                long id = a.I64();
                int room = a.I32();
                ReadOnlySpan<byte> message = a.Data();
                if (a.Finish().IsSuccess)
                {
                    _context.Ports.Message(c, registration, id, room, message);
                }

                return;
            }

            case IsolationOp.ProcessCreate:
            {
                int registration = a.I32();
                ProcessCreateInfo info = IsolationCodec.ReadProcessCreate(ref a);
                if (a.Finish().IsSuccess)
                {
                    _context.RunCallback(c, registration, (object callback) =>
                    {
                        RemoteHolds.Scope scope = _context.Holds.Enter(PendedOperationKind.ProcessCreate);
                        Status verdict = Status.Unsuccessful;
                        try
                        {
                            verdict = ((ProcessCreateCallback)callback)(in info);
                            return verdict;
                        }
                        finally
                        {
                            _context.Holds.Exit(scope, verdict == Status.Pending);
                        }
                    });
                }

                return;
            }

            case IsolationOp.ImageLoad:
            {
                int registration = a.I32();
                ImageLoadInfo info = IsolationCodec.ReadImageLoad(ref a);
                if (a.Finish().IsSuccess)
                {
                    _context.RunCallback(c, registration, (object callback) => ((ImageLoadCallback)callback)(in info));
                }

                return;
            }

            case IsolationOp.ParametersChanged:
            {
                int registration = a.I32();
                Dictionary<string, string> now = a.Map();
                Dictionary<string, string> previous = a.Map();
                string[] changed = a.Strings();
                if (a.Finish().IsSuccess)
                {
                    _context.SetParameters(now);
                    var change = new ParametersChange(now, previous, changed);
                    _context.RunCallback(c, registration, (object callback) => ((ParametersChangedCallback)callback)(in change));
                }

                return;
            }

            case IsolationOp.Classify or IsolationOp.FlowNotifications or IsolationOp.RegistryCallback:
                RemoteNetworkCallbacks.Serve(_context, c, op, ref a);
                return;
            default:
                // An API call sent to the host: the kernel broke the protocol (no reply: the channel fails).
                return;
        }
    }
}

/// <summary>The driver's context in its host: every call is a request to the kernel, or a documented refusal.</summary>
internal sealed class RemoteDriverContext : IDriverContext
{
    private readonly ConcurrentDictionary<int, object> _callbacks = new();
    private int _nextRegistration;
    private volatile IReadOnlyDictionary<string, string> _parameters = new Dictionary<string, string>(StringComparer.Ordinal);

    public RemoteDriverContext(string name, IsolationChannel channel)
    {
        DriverName = name;
        Channel = channel;
        Files = new RemoteFiles(this);
        Processes = new RemoteProcesses(this);
        SecurityCenter = new RemoteSecurityCenter(this);
        Ports = new RemotePorts(this);
        Objects = new RemoteObjects(this);
        Holds = new RemoteHolds(this);
        Registry = new RemoteRegistry(this);
        Network = new RemoteNetwork(this);
    }

    public IsolationChannel Channel { get; }

    /// <summary>The driver's held operations, of every kind.</summary>
    public RemoteHolds Holds { get; }

    public string DriverName { get; }

    public Version ApiVersion => PalisadeKernel.ApiVersion;

    public IReadOnlyDictionary<string, string> Parameters => _parameters;

    public IProcessCallbacks Processes { get; }

    IObjectCallbacks IDriverContext.Objects => Objects;

    public RemoteObjects Objects { get; }

    public IRegistryCallbacks Registry { get; }

    IFilterManager IDriverContext.Files => Files;

    public RemoteFiles Files { get; }

    public INetworkFilterEngine Network { get; }

    public ISecurityCenter SecurityCenter { get; }

    IPortManager IDriverContext.Ports => Ports;

    public RemotePorts Ports { get; }

    internal void SetParameters(IReadOnlyDictionary<string, string> parameters) => _parameters = parameters;

    /// <summary>Keeps a callback under a new number, which the kernel's proxy sends back.</summary>
    internal int Keep(object callback)
    {
        int id = Interlocked.Increment(ref _nextRegistration);
        _callbacks[id] = callback;
        return id;
    }

    internal object? Find(int registration) => _callbacks.GetValueOrDefault(registration);

    /// <summary>Runs a callback that returns a status (process create, image load, parameters) and replies with its outcome.</summary>
    internal void RunCallback(Conversation c, int registration, Func<object, Status> run)
    {
        RecordWriter w = c.BeginReply(Status.Success);
        Status verdict;
        try
        {
            object callback = Find(registration) ?? throw new InvalidOperationException("no registration " + registration + " in this host");
            verdict = run(callback);
        }
#pragma warning disable CA1031 // The driver's exception goes to the kernel, which contains it as it does an in-kernel one.
        catch (Exception e)
#pragma warning restore CA1031
        {
            w = c.BeginReply(Status.Success);
            IsolationCodec.WriteThrew(ref w, e);
            c.Reply(ref w);
            return;
        }

        w = c.BeginReply(Status.Success);
        w.U8((byte)CallbackOutcome.Returned);
        w.Status(verdict);
        c.Reply(ref w);
    }

    /// <summary>Sends a request whose reply is a status alone; <see cref="Status.InvalidDeviceState"/> when the kernel is gone.</summary>
    internal Status Request(Conversation c, ref RecordWriter w)
    {
        if (w.Overflowed)
        {
            return Status.InvalidParameter;
        }

        if (!c.Call(ref w, out RecordReader r))
        {
            return Status.InvalidDeviceState;
        }

        Status s = r.Status();
        return End(ref r, s);
    }

    /// <summary>Ends a reply; a malformed one fails the channel.</summary>
    internal Status End(ref RecordReader r, Status s)
    {
        if (r.Finish().IsError)
        {
            Channel.Fail("a malformed reply from the kernel");
            return Status.InvalidDeviceState;
        }

        return s;
    }

    internal Status Cookie(IsolationOp op, CallbackCookie cookie)
    {
        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(op);
            w.I64(cookie.Value);
            return Request(c, ref w);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    /// <summary>Registers a callback kept under a number: the kernel answers with a cookie.</summary>
    internal Status Register(IsolationOp op, object? callback, out CallbackCookie cookie)
    {
        cookie = default;
        if (callback is null)
        {
            return Status.InvalidParameter;
        }

        int id = Keep(callback);
        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(op);
            w.I32(id);
            return ReadCookie(c, ref w, out cookie);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    internal Status ReadCookie(Conversation c, ref RecordWriter w, out CallbackCookie cookie)
    {
        cookie = default;
        if (w.Overflowed)
        {
            return Status.InvalidParameter;
        }

        if (!c.Call(ref w, out RecordReader r))
        {
            return Status.InvalidDeviceState;
        }

        Status s = r.Status();
        long value = r.I64();
        s = End(ref r, s);
        if (s.IsSuccess)
        {
            cookie = new CallbackCookie(value);
        }

        return s;
    }

    public Status RegisterParametersChanged(ParametersChangedCallback callback, out CallbackCookie cookie) =>
        Register(IsolationOp.RegisterParametersChanged, callback, out cookie);

    public Status UnregisterParametersChanged(CallbackCookie cookie) => Cookie(IsolationOp.UnregisterParametersChanged, cookie);

    public Status ReportEvent(string kind, string message, int processId, string? path)
    {
        if (kind is null || message is null)
        {
            return Status.InvalidParameter;
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.ReportEvent);
            w.String(kind);
            w.String(message);
            w.I32(processId);
            w.String(path);
            return Request(c, ref w);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    public Status SetCallbackOptions(CallbackCookie registration, CallbackOptions options)
    {
        if (options is null)
        {
            return Status.InvalidParameter;
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.SetCallbackOptions);
            w.I64(registration.Value);
            w.I64(options.MaximumHoldTime.Ticks);
            w.I32((int)options.TimeoutVerdict);
            w.I32(options.DisableAfterFaults);
            return Request(c, ref w);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    public Status EnableRegistration(CallbackCookie registration) => Cookie(IsolationOp.EnableRegistration, registration);

    public Status DisableRegistration(CallbackCookie registration) => Cookie(IsolationOp.DisableRegistration, registration);

    public Status RegisterFaultCallback(RegistrationFaultCallback callback, out CallbackCookie cookie) =>
        Register(IsolationOp.RegisterFaultCallback, callback, out cookie);

    public Status UnregisterFaultCallback(CallbackCookie cookie) => Cookie(IsolationOp.UnregisterFaultCallback, cookie);

    /// <summary>A work item runs in the host, on its own thread pool: its calls into the kernel are conversations of their own.</summary>
    public Status QueueWorkItem(WorkItemCallback callback, object? state)
    {
        if (callback is null)
        {
            return Status.InvalidParameter;
        }

        _ = ThreadPool.UnsafeQueueUserWorkItem(
            s =>
            {
                try
                {
                    callback(s);
                }
#pragma warning disable CA1031 // A work item's exception is reported, as the kernel's work queue does.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    _ = ReportEvent("fault", "a work item threw " + e.GetType().Name + ": " + e.Message, 0, null);
                }
            },
            state);
        return Status.Success;
    }
}
