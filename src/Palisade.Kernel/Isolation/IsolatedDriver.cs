// The kernel's side of a driver that runs isolated: to the kernel it is a driver like any other (an IDriver with a
// DriverContext of its own, its registrations made through the kernel's sanctioned path), whose callbacks are proxies
// that send the operation to the driver host and read back the verdict, and whose calls into the API are requests the
// host sends, served here against that context. None of the driver's code runs in the kernel process.
using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Isolation;

/// <summary>How the kernel starts a driver host: its own executable (and the arguments before the verb).</summary>
/// <param name="Executable">The palisade apphost, or dotnet.</param>
/// <param name="PrefixArguments">Arguments before the verb (palisade.dll when run through dotnet).</param>
public sealed record DriverHostCommand(string Executable, IReadOnlyList<string> PrefixArguments);

/// <summary>What the host's hidden verb needs of the kernel's assembly (the verb itself is the host's, <c>DriverHostProcess</c>).</summary>
public static class DriverHostEntry
{
    /// <summary>The hidden verb of the driver host.</summary>
    public const string Verb = IsolatedDriver.Verb;

    /// <summary>
    /// Runs a driver host on its socket (descriptor 3) until the kernel unloads the driver or goes away; returns the exit
    /// status. <paramref name="confine"/> runs once the package and the trust store are read and verified, before any of
    /// the package's code loads.
    /// </summary>
    /// <param name="packageDirectory">The package folder.</param>
    /// <param name="home">The kernel's state folder (its trust store).</param>
    /// <param name="flavor">The kernel's flavor, by name: the same checks as the kernel's.</param>
    /// <param name="verifiedDigest">The content digest of the package the kernel verified, in hex: the host loads only
    /// those bytes, under the kernel's verifier verdict.</param>
    /// <param name="confine">Gives up the host's privileges; ends the process when it cannot.</param>
    public static int Run(string packageDirectory, string home, string flavor, string verifiedDigest, Action confine)
    {
        if (!Enum.TryParse(flavor, out KernelFlavor f) || !Enum.IsDefined(f) || verifiedDigest.Length != 64)
        {
            return 2;
        }

        byte[] digest;
        try
        {
            digest = Convert.FromHexString(verifiedDigest);
        }
        catch (FormatException)
        {
            return 2;
        }

        return DriverHost.Run(IsolatedDriver.SocketFd, packageDirectory, home, f, digest, confine);
    }
}

internal sealed unsafe partial class IsolatedDriver : IDriver, IIsolationHandler
{
    /// <summary>The hidden verb of the driver host.</summary>
    public const string Verb = "__driverhost";

    /// <summary>The descriptor of the socket in the host.</summary>
    public const int SocketFd = 3;

    /// <summary>The only variable of the host's environment: the runtime's diagnostics (debugger, profiler, IPC) off.</summary>
    public const string Environment = "DOTNET_EnableDiagnostics=0";

    /// <summary>The first uid (and gid) of driver hosts when the kernel runs as root: a per-run id above every usual range.</summary>
    public const int FirstHostId = 0x6000_0000;

    /// <summary>How long the host may take to start and run the driver's Load.</summary>
    public static readonly TimeSpan StartTime = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long the kernel waits for each record of a host before it judges the host hung (12 times the callback deadline,
    /// at least a minute). A callback that overruns its deadline is not that: the kernel's callback monitor blames it at
    /// its deadline, as an in-kernel callback's overrun, and the host is kept; only a host silent this long is ended.
    /// </summary>
    public static TimeSpan HangLimit(TimeSpan callbackDeadline) => TimeSpan.FromTicks(Math.Max(StartTime.Ticks, callbackDeadline.Ticks * 12));

    private static int s_hosts;

    private readonly PalisadeKernel _kernel;
    private readonly string _package;
    private readonly byte[] _verifiedDigest;
    private readonly DriverHostCommand _command;
    private readonly ConcurrentDictionary<long, Stream> _streams = new();
    private readonly ConcurrentDictionary<long, VerdictToken> _verdicts = new();
    private DriverContext? _context;
    private IsolationChannel? _channel;
    private int _pid;
    private long _nextStream;
    private volatile bool _stopping;

    /// <param name="kernel">The kernel.</param>
    /// <param name="packageDirectory">The package folder.</param>
    /// <param name="verifiedDigest">The content digest of the package as the kernel verified it (<see cref="PackageDigest.ContentDigest"/>).</param>
    /// <param name="command">How to start a driver host.</param>
    public IsolatedDriver(PalisadeKernel kernel, string packageDirectory, byte[] verifiedDigest, DriverHostCommand command)
    {
        _kernel = kernel;
        _package = packageDirectory;
        _verifiedDigest = verifiedDigest;
        _command = command;
    }

    /// <summary>The host's process id (0 before it starts).</summary>
    public int HostProcessId => _pid;

    /// <summary>The uid and gid the host runs under, or -1 when the kernel does not run as root (the host keeps the kernel's).</summary>
    public int HostUserId { get; private set; } = -1;

    /// <summary>Why the host failed, or null while it works.</summary>
    public string? Failure => _channel?.Failure;

    /// <summary>
    /// Starts the driver host process (it starts its runtime and verifies the package while the kernel goes on): what
    /// <see cref="Load"/> does first when it has not been done. Starting every host of a run before the first Load lets
    /// their start-ups overlap.
    /// </summary>
    /// <param name="driverName">The driver's name, for fault reports.</param>
    /// <returns><see cref="Status.Success"/>, or <see cref="Status.InsufficientResources"/> when no host could be started
    /// (reported as a <c>driver-fault</c>).</returns>
    public Status StartHost(string driverName)
    {
        if (_channel is not null)
        {
            return _pid > 0 ? Status.Success : Status.InsufficientResources;
        }

        if (Libc.GetEUid() == 0)
        {
            int n = Interlocked.Increment(ref s_hosts);
            HostUserId = FirstHostId + ((System.Environment.ProcessId & 0xFFFFF) << 4) + (n & 0xF);
        }

        int* pair = stackalloc int[2];
        if (Libc.SocketPair(Libc.AF_UNIX, 5 /* SOCK_SEQPACKET */ | Libc.SOCK_CLOEXEC, 0, pair) < 0)
        {
            _kernel.Events.WriteDriverFault(driverName, "socketpair for its driver host failed: errno " + Libc.LastError);
            return Status.InsufficientResources;
        }

        _pid = Spawn(pair[1]);
        if (_pid > 0)
        {
            DriverHostProcesses.Started(_pid);
        }

        Libc.CloseOwned(pair[1]);
        var socket = new Socket(new SafeSocketHandle(pair[0], ownsHandle: true));
        _channel = new IsolationChannel(socket, kernelSide: true, this, HangLimit(_kernel.Options.CallbackDeadline));
        if (_pid < 0)
        {
            _channel.Dispose();
            _kernel.Events.WriteDriverFault(driverName, "its driver host could not be started: errno " + -_pid);
            return Status.InsufficientResources;
        }

        _channel.Start(OnFailure);
        return Status.Success;
    }

    public Status Load(IDriverContext context)
    {
        _context = (DriverContext)context;
        Status started = StartHost(context.DriverName);
        if (started.IsError)
        {
            return started;
        }

        Conversation c = _channel!.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.Load);
            IsolationCodec.WriteMap(ref w, context.Parameters);
            if (!c.Call(ref w, out RecordReader r, StartTime))
            {
                return Status.CallbackFaulted;
            }

            Status s = r.Status();
            string message = r.Text();
            if (r.Finish().IsError)
            {
                _channel.Fail("a malformed reply to Load");
                return Status.CallbackFaulted;
            }

            _kernel.Events.WriteKernel("driver-host", FormattableString.Invariant(
                $"{context.DriverName} runs isolated in driver host {_pid} (uid {(HostUserId < 0 ? (int)Libc.GetEUid() : HostUserId)}): {message}"));
            return s;
        }
        finally
        {
            _channel.Leave(c);
        }
    }

    public void Unload()
    {
        IsolationChannel? channel = _channel;
        if (channel is null)
        {
            return;
        }

        StopFlowNotifications();
        if (channel.Failure is null)
        {
            Conversation c = channel.Enter();
            try
            {
                RecordWriter w = c.BeginCall(IsolationOp.Unload);
                if (c.Call(ref w, out RecordReader r))
                {
                    _ = r.Status();
                }
            }
            finally
            {
                channel.Leave(c);
            }
        }

        ReportDroppedNotifications();
        Stop();
    }

    /// <summary>Ends a host started (<see cref="StartHost"/>) for a driver that will not be loaded after all: it is killed
    /// and reaped, without an Unload it would have no Load for.</summary>
    public void Discard() => Stop();

    /// <summary>Closes the channel and ends the host (it may be mid-callback: it is killed, and reaped).</summary>
    private void Stop()
    {
        _stopping = true;
        _channel?.Dispose();
        foreach (Stream s in _streams.Values)
        {
            s.Dispose();
        }

        _streams.Clear();
        _held.Clear();
        _ports.Clear();
        _connections.Clear();
        int pid = Interlocked.Exchange(ref _pid, 0);
        if (pid > 0)
        {
            _ = Libc.Kill(pid, Libc.SIGKILL);
            SigInfo info;
            while (Libc.WaitId(Libc.P_PID, pid, &info, Libc.WEXITED) < 0 && Libc.LastError == Errno.EINTR)
            {
            }

            DriverHostProcesses.Reaped(pid);
        }
    }

    /// <summary>The host crashed, hung past a deadline or broke the protocol: a faulting driver from now on.</summary>
    private void OnFailure(string why)
    {
        if (_stopping)
        {
            return;
        }

        string name = _context?.DriverName ?? "?";
        _kernel.Events.WriteDriverFault(name, FormattableString.Invariant(
            $"its driver host {_pid} failed ({why}); the host is ended and the driver's registrations give their timeout verdicts until it is unloaded"));
        if (_pid > 0)
        {
            _ = Libc.Kill(_pid, Libc.SIGKILL);
        }
    }

    private int Spawn(int socket)
    {
        var argv = new List<string>(_command.PrefixArguments.Count + 8) { _command.Executable };
        argv.AddRange(_command.PrefixArguments);
        argv.Add(Verb);
        argv.Add(_package);
        argv.Add(_kernel.Options.Home);
        argv.Add(_kernel.Flavor.ToString());
        argv.Add(System.Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        argv.Add(HostUserId.ToString(CultureInfo.InvariantCulture));
        argv.Add(Convert.ToHexStringLower(_verifiedDigest));

        // The guest's terminal is not the driver's (standard input and output are /dev/null; standard error stays the
        // kernel's, for the host's own last words), nothing else of the kernel's crosses (every descriptor above the
        // socket is closed), and kill(0, ...) in the host reaches no process of the kernel's group.
        byte** environment = Interop.Spawn.AllocStrings([Environment]);
        try
        {
            return Interop.Spawn.SpawnHelper(argv, environment, socket, SocketFd, sealOff: true);
        }
        finally
        {
            Interop.Spawn.FreeStrings(environment);
        }
    }

    private Exception HostFailed() =>
        new IsolatedCallbackException("the driver host failed: " + (_channel?.Failure ?? "unknown"));

    /// <summary>Reads a callback's outcome: returns normally when it returned, throws what the kernel contains when it threw.</summary>
    private void ReadOutcome(ref RecordReader r)
    {
        _ = r.Status();
        if ((CallbackOutcome)r.U8() != CallbackOutcome.Threw)
        {
            return;
        }

        string type = r.Text();
        string message = r.Text();
        EndReply(ref r);
        throw new IsolatedCallbackException(type + " in the driver host: " + message);
    }

    private void EndReply(ref RecordReader r)
    {
        if (r.Finish().IsError)
        {
            _channel!.Fail("a malformed reply");
            throw HostFailed();
        }
    }

    internal PreOperationStatus Pre(int registration, ref FileOperation op)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        HoldFrames frames = HoldFrames.Current;
        Frame frame = frames.Push(c, PendedOperationKind.FilePreOperation);
        frame.File = op;
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.FilePre);
            w.I32(registration);
            IsolationCodec.Write(ref w, in op);
            if (!c.Call(ref w, out RecordReader r))
            {
                throw HostFailed();
            }

            ReadOutcome(ref r);
            int verdict = r.I32();
            Status status = r.Status();
            long context = r.I64();
            EndReply(ref r);
            op.Status = status;
            op.CompletionContext = context == 0 ? null : new ContextToken(context);
            AfterPre(frame, ref op, (PreOperationStatus)verdict);
            return (PreOperationStatus)verdict;
        }
        finally
        {
            frames.Pop(frame);
            channel.Leave(c);
        }
    }

    internal void Post(int registration, ref FileOperation op)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.FilePost);
            w.I32(registration);
            IsolationCodec.Write(ref w, in op);
            w.I64(op.CompletionContext is ContextToken t ? t.Value : 0);
            if (!c.Call(ref w, out RecordReader r))
            {
                throw HostFailed();
            }

            ReadOutcome(ref r);
            Status status = r.Status();
            EndReply(ref r);
            op.Status = status;
        }
        finally
        {
            channel.Leave(c);
        }
    }

    internal Status ProcessCreate(int registration, in ProcessCreateInfo info)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        HoldFrames frames = HoldFrames.Current;
        Frame? frame = null;
        try
        {
            frame = frames.Push(c, PendedOperationKind.ProcessCreate);
            frame.Create = info;
            RecordWriter w = c.BeginCall(IsolationOp.ProcessCreate);
            w.I32(registration);
            IsolationCodec.Write(ref w, in info);
            Status verdict = CallForStatus(c, ref w);
            AfterDecision(frame, verdict == Status.Pending);
            return verdict;
        }
        finally
        {
            if (frame is not null)
            {
                frames.Pop(frame);
            }

            channel.Leave(c);
        }
    }

    internal Status ImageLoad(int registration, in ImageLoadInfo info)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.ImageLoad);
            w.I32(registration);
            IsolationCodec.Write(ref w, in info);
            return CallForStatus(c, ref w);
        }
        finally
        {
            channel.Leave(c);
        }
    }

    internal Status ParametersChanged(int registration, in ParametersChange change)
    {
        IsolationChannel channel = _channel!;
        Conversation c = channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.ParametersChanged);
            w.I32(registration);
            IsolationCodec.WriteMap(ref w, change.Parameters);
            IsolationCodec.WriteMap(ref w, change.Previous);
            IsolationCodec.WriteList(ref w, change.ChangedNames);
            return CallForStatus(c, ref w);
        }
        finally
        {
            channel.Leave(c);
        }
    }

    private Status CallForStatus(Conversation c, ref RecordWriter w)
    {
        if (!c.Call(ref w, out RecordReader r))
        {
            throw HostFailed();
        }

        ReadOutcome(ref r);
        Status status = r.Status();
        EndReply(ref r);
        return status;
    }

    /// <summary>Serves the driver's calls into the API (the host's requests), against the driver's own context.</summary>
    public void Serve(Conversation c, IsolationOp op, ref RecordReader a)
    {
        DriverContext context = _context!;
        IFilterManager files = context.Files;
        switch (op)
        {
            case IsolationOp.PendPreOperation:
            case IsolationOp.CompletePendedPreOperation:
            case IsolationOp.ReadPendedFile:
            case IsolationOp.PendCreate:
            case IsolationOp.PendClassify:
            case IsolationOp.PendObjectOperation:
            case IsolationOp.CompletePended:
                ServeHold(c, op, ref a, files);
                return;
            case IsolationOp.StreamWrite:
            case IsolationOp.StreamLength:
            case IsolationOp.StreamSetLength:
                ServeStream(c, op, ref a);
                return;
            case IsolationOp.SetFileContext:
            case IsolationOp.GetFileContext:
            case IsolationOp.DeleteFileContext:
                ServeFileContext(c, op, ref a, files);
                return;
            case IsolationOp.RegisterObjectCallback:
                RegisterObjectCallback(c, ref a, context.Objects);
                return;
            case IsolationOp.UnregisterObjectCallback:
                ServeCookie(c, ref a, context.Objects.Unregister);
                return;
            case IsolationOp.CreatePort:
            case IsolationOp.ClosePort:
            case IsolationOp.PortSend:
            case IsolationOp.PortSendForReply:
            case IsolationOp.CloseConnection:
            case IsolationOp.ExcludeProcess:
            case IsolationOp.IncludeProcess:
                ServePorts(c, op, ref a, context.Ports);
                return;
            case IsolationOp.RegisterFaultCallback:
            {
                int registration = a.I32();
                if (a.Finish().IsSuccess)
                {
                    var proxy = new FaultProxy(this, registration);
                    ReplyCookie(c, context.RegisterFaultCallback(proxy.Fault, out CallbackCookie cookie), cookie);
                }

                return;
            }

            case IsolationOp.UnregisterFaultCallback:
                ServeCookie(c, ref a, context.UnregisterFaultCallback);
                return;
            case IsolationOp.ReportEvent:
            {
                string kind = a.Text();
                string message = a.Text();
                int pid = a.I32();
                string? path = a.String();
                if (a.Finish().IsSuccess)
                {
                    c.Reply(context.ReportEvent(kind, message, pid, path));
                }

                return;
            }

            case IsolationOp.RegisterFilter:
                RegisterFilter(c, ref a, files);
                return;
            case IsolationOp.UnregisterFilter:
                ServeCookie(c, ref a, files.UnregisterFilter);
                return;
            case IsolationOp.SetCallbackOptions:
            {
                CallbackCookie cookie = new(a.I64());
                long hold = a.I64();
                TimeoutVerdict verdict = a.Enum<TimeoutVerdict>();
                int disableAfter = a.I32();
                if (a.Finish().IsSuccess)
                {
                    c.Reply(context.SetCallbackOptions(cookie, new CallbackOptions { MaximumHoldTime = TimeSpan.FromTicks(hold), TimeoutVerdict = verdict, DisableAfterFaults = disableAfter }));
                }

                return;
            }

            case IsolationOp.EnableRegistration:
                ServeCookie(c, ref a, context.EnableRegistration);
                return;
            case IsolationOp.DisableRegistration:
                ServeCookie(c, ref a, context.DisableRegistration);
                return;
            case IsolationOp.GetFileVerdict:
            {
                CallbackCookie cookie = new(a.I64());
                FileIdentity file = a.Identity();
                FileChangeStamp stamp = a.Stamp();
                if (a.Finish().IsSuccess)
                {
                    Status s = files.GetFileVerdict(cookie, file, stamp, out object? verdict);
                    RecordWriter w = c.BeginReply(s);
                    w.I64(verdict is VerdictToken t ? t.Value : 0);
                    c.Reply(ref w);
                }

                return;
            }

            case IsolationOp.SetFileVerdict:
            {
                CallbackCookie cookie = new(a.I64());
                FileIdentity file = a.Identity();
                FileChangeStamp stamp = a.Stamp();
                long token = a.I64();
                FileVerdictFlags flags = a.Flags<FileVerdictFlags>();
                if (a.Finish().IsSuccess)
                {
                    c.Reply(token == 0 ? Status.InvalidParameter : files.SetFileVerdict(cookie, file, stamp, _verdicts.GetOrAdd(token, static t => new VerdictToken(t)), flags));
                }

                return;
            }

            case IsolationOp.ClearFileVerdicts:
                ServeCookie(c, ref a, files.ClearFileVerdicts);
                return;

            case IsolationOp.ReadFile:
            {
                CallbackCookie cookie = new(a.I64());
                FileIdentity file = a.Identity();
                long offset = a.I64();
                int length = a.I32();
                if (a.Finish().IsSuccess)
                {
                    // Read straight into the reply (a read makes no nested call).
                    Span<byte> data = BeginRead(c, length, out RecordWriter w);
                    EndRead(c, ref w, files.ReadFile(cookie, file, offset, data, out int read), data.Length, read);
                }

                return;
            }

            case IsolationOp.OpenFile:
            {
                CallbackCookie cookie = new(a.I64());
                string path = a.Text();
                var access = a.Enum<FileAccess>();
                if (a.Finish().IsSuccess)
                {
                    Status s = files.OpenFile(cookie, path, access, out Stream? stream, out FileIdentity file);
                    long handle = 0;
                    if (stream is not null)
                    {
                        handle = Interlocked.Increment(ref _nextStream);
                        _streams[handle] = stream;
                    }

                    RecordWriter w = c.BeginReply(s);
                    w.I64(handle);
                    w.Identity(file);
                    c.Reply(ref w);
                }

                return;
            }

            case IsolationOp.StreamRead:
            {
                long handle = a.I64();
                long offset = a.I64();
                int length = a.I32();
                if (a.Finish().IsSuccess)
                {
                    if (!_streams.TryGetValue(handle, out Stream? stream))
                    {
                        c.Reply(Status.InvalidHandle);
                        return;
                    }

                    Span<byte> data = BeginRead(c, length, out RecordWriter w);
                    int read = 0;
                    Status s = Status.Success;
                    try
                    {
                        stream.Position = offset;
                        read = stream.Read(data);
                    }
                    catch (IOException)
                    {
                        s = Status.Unsuccessful;
                    }

                    EndRead(c, ref w, s, data.Length, read);
                }

                return;
            }

            case IsolationOp.StreamClose:
            {
                long handle = a.I64();
                if (a.Finish().IsSuccess)
                {
                    bool closed = _streams.TryRemove(handle, out Stream? stream);
                    stream?.Dispose();
                    c.Reply(closed ? Status.Success : Status.InvalidHandle);
                }

                return;
            }

            case IsolationOp.RenameFile:
            {
                CallbackCookie cookie = new(a.I64());
                string path = a.Text();
                string newPath = a.Text();
                bool expects = a.Bool();
                FileIdentity expected = a.Identity();
                if (a.Finish().IsSuccess)
                {
                    c.Reply(expects ? files.RenameFile(cookie, path, newPath, expected) : files.RenameFile(cookie, path, newPath));
                }

                return;
            }

            case IsolationOp.DeleteFile:
            {
                CallbackCookie cookie = new(a.I64());
                string path = a.Text();
                bool expects = a.Bool();
                FileIdentity expected = a.Identity();
                if (a.Finish().IsSuccess)
                {
                    c.Reply(expects ? files.DeleteFile(cookie, path, expected) : files.DeleteFile(cookie, path));
                }

                return;
            }

            case IsolationOp.QueryFileState:
            {
                CallbackCookie cookie = new(a.I64());
                FileIdentity file = a.Identity();
                if (a.Finish().IsSuccess)
                {
                    Status s = files.QueryFileState(cookie, file, out FileState state);
                    RecordWriter w = c.BeginReply(s);
                    w.Identity(state.File);
                    w.I32((int)state.Type);
                    w.I64(state.Size);
                    w.I64(state.ModificationTime);
                    w.I64(state.ChangeTime);
                    w.I64(state.BirthTime);
                    w.Stamp(state.ChangeStamp);
                    w.I32((int)state.Writers);
                    w.I32(state.GuestWriteDescriptions);
                    c.Reply(ref w);
                }

                return;
            }

            case IsolationOp.SetFileInformation:
            {
                CallbackCookie cookie = new(a.I64());
                string path = a.Text();
                FileInformationClass what = a.Enum<FileInformationClass>();
                long value = a.I64();
                if (a.Finish().IsSuccess)
                {
                    c.Reply(files.SetFileInformation(cookie, path, what, value));
                }

                return;
            }

            case IsolationOp.RegisterProcessCreate:
            {
                int registration = a.I32();
                if (a.Finish().IsSuccess)
                {
                    var proxy = new ProcessProxy(this, registration);
                    ReplyCookie(c, context.Processes.RegisterProcessCreate(proxy.Create, out CallbackCookie cookie), cookie);
                }

                return;
            }

            case IsolationOp.RegisterImageLoad:
            {
                int registration = a.I32();
                if (a.Finish().IsSuccess)
                {
                    var proxy = new ProcessProxy(this, registration);
                    ReplyCookie(c, context.Processes.RegisterImageLoad(proxy.Image, out CallbackCookie cookie), cookie);
                }

                return;
            }

            case IsolationOp.UnregisterProcessCallback:
                ServeCookie(c, ref a, context.Processes.Unregister);
                return;
            case IsolationOp.RegisterProduct:
            {
                SecurityProductKind kind = a.Enum<SecurityProductKind>();
                string name = a.Text();
                if (a.Finish().IsSuccess)
                {
                    ReplyCookie(c, context.SecurityCenter.RegisterProduct(kind, name, out CallbackCookie cookie), cookie);
                }

                return;
            }

            case IsolationOp.ReportProductState:
            {
                CallbackCookie cookie = new(a.I64());
                ProductState state = a.Enum<ProductState>();
                if (a.Finish().IsSuccess)
                {
                    c.Reply(context.SecurityCenter.ReportState(cookie, state));
                }

                return;
            }

            case IsolationOp.UnregisterProduct:
                ServeCookie(c, ref a, context.SecurityCenter.UnregisterProduct);
                return;
            case IsolationOp.RegisterParametersChanged:
            {
                int registration = a.I32();
                if (a.Finish().IsSuccess)
                {
                    var proxy = new ProcessProxy(this, registration);
                    ReplyCookie(c, context.RegisterParametersChanged(proxy.Parameters, out CallbackCookie cookie), cookie);
                }

                return;
            }

            case IsolationOp.UnregisterParametersChanged:
                ServeCookie(c, ref a, context.UnregisterParametersChanged);
                return;
            case >= IsolationOp.RegisterProcessExit and <= IsolationOp.LastProcessOp:
                ServeProcesses(c, op, ref a, context);
                return;
            case >= IsolationOp.AddSublayer and <= IsolationOp.UnregisterRegistryCallback:
                ServeNetworkOrRegistry(c, op, ref a, context);
                return;
            default:
                // A callback sent to the kernel: the host broke the protocol (no reply: the channel fails).
                return;
        }
    }

    private static void ServeCookie(Conversation c, ref RecordReader a, Func<CallbackCookie, Status> call)
    {
        CallbackCookie cookie = new(a.I64());
        if (a.Finish().IsSuccess)
        {
            c.Reply(call(cookie));
        }
    }

    private static void ReplyCookie(Conversation c, Status s, CallbackCookie cookie)
    {
        RecordWriter w = c.BeginReply(s);
        w.I64(cookie.Value);
        c.Reply(ref w);
    }

    private void RegisterFilter(Conversation c, ref RecordReader a, IFilterManager files)
    {
        string name = a.Text();
        string altitude = a.Text();
        int verdictCacheCapacity = a.I32();
        uint count = a.U32();
        if (count > 64)
        {
            return;
        }

        var operations = new List<FileOperationRegistration>((int)count);
        for (uint i = 0; i < count && !a.Malformed; i++)
        {
            FileOperationKind kind = a.Enum<FileOperationKind>();
            int registration = a.I32();
            bool pre = a.Bool();
            bool post = a.Bool();
            FileOperationFlags flags = a.Flags<FileOperationFlags>();
            var proxy = new FilterProxy(this, registration);
            operations.Add(new FileOperationRegistration { Kind = kind, PreOperation = pre ? proxy.Pre : null, PostOperation = post ? proxy.Post : null, Flags = flags });
        }

        if (a.Finish().IsError)
        {
            return;
        }

        Status s = files.RegisterFilter(new FilterRegistration { Name = name, Altitude = altitude, VerdictCacheCapacity = verdictCacheCapacity, Operations = operations }, out CallbackCookie cookie);
        ReplyCookie(c, s, cookie);
    }

    /// <summary>The kernel's callbacks of one filter operation registration of the host's.</summary>
    private sealed class FilterProxy(IsolatedDriver driver, int registration)
    {
        public PreOperationStatus Pre(ref FileOperation op) => driver.Pre(registration, ref op);

        public void Post(ref FileOperation op) => driver.Post(registration, ref op);
    }

    /// <summary>The kernel's callback of one process, image-load or parameters registration of the host's.</summary>
    private sealed class ProcessProxy(IsolatedDriver driver, int registration)
    {
        public Status Create(in ProcessCreateInfo info) => driver.ProcessCreate(registration, in info);

        public Status Image(in ImageLoadInfo info) => driver.ImageLoad(registration, in info);

        public Status Parameters(in ParametersChange change) => driver.ParametersChanged(registration, in change);
    }

    /// <summary>A verdict the host cached: the kernel's verdict cache keeps this object, the host its own by number.</summary>
    private sealed class VerdictToken(long value)
    {
        public long Value { get; } = value;
    }

    /// <summary>A completion context the host's pre callback keeps for its post callback, by number.</summary>
    private sealed class ContextToken(long value)
    {
        public long Value { get; } = value;
    }
}
