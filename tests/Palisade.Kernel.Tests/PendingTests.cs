using System.Collections.Concurrent;
using System.Net;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Hosting;

namespace Palisade.Kernel.Tests;

/// <summary>
/// Held (pended) operations: a pre callback holds a guest's operation, the driver completes it from another thread, and
/// every way a hold can end — completion, timeout, cancellation, withdrawal — with the documented statuses.
/// </summary>
public sealed class PendingTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly TestKernel _k = new();
    private readonly Requester _guest = new(4242, 4243) { UserId = 1000 };
    private readonly string _file;

    public PendingTests()
    {
        _file = Path.Combine(_k.Home, "held.txt");
        File.WriteAllText(_file, "the content the filter reads while the open is held");
    }

    public void Dispose() => _k.Dispose();

    private static readonly CallbackOptions Holds = new() { MaximumHoldTime = TimeSpan.FromMinutes(1) };

    /// <summary>A driver with one create filter that pends every open it sees and hands the handle over.</summary>
    private sealed class HoldingFilter
    {
        public readonly BlockingCollection<IPendedOperation> Held = [];
        public readonly ConcurrentQueue<IPendedOperation> Cancelled = new();
        public readonly ConcurrentQueue<FileOperation> Pre = new();
        public readonly ConcurrentQueue<object?> PostContexts = new();
        public Status PendStatus;
        public IDriverContext Context = null!;
        public CallbackCookie Filter;

        public PreOperationStatus OnPre(ref FileOperation op)
        {
            PendStatus = Context.Files.PendPreOperation(ref op, Cancelled.Enqueue, out IPendedOperation? held);
            Pre.Enqueue(op);
            if (PendStatus.IsError)
            {
                return PreOperationStatus.SuccessNoCallback;
            }

            Held.Add(held!);
            return PreOperationStatus.Pending;
        }
    }

    private HoldingFilter StartHolding(CallbackOptions? options = null, string name = "holder")
    {
        var h = new HoldingFilter();
        h.Context = _k.Start(c =>
        {
            Status s = c.Files.RegisterFilter(new FilterRegistration
            {
                Name = name,
                Altitude = "320000",
                Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = h.OnPre, PostOperation = (ref FileOperation op) => h.PostContexts.Enqueue(op.CompletionContext) }],
            }, out h.Filter);
            return s.IsError ? s : c.SetCallbackOptions(h.Filter, options ?? Holds);
        }, name);
        return h;
    }

    /// <summary>Begins an open on a thread of its own, as a host thread serving a guest would; it ends with the open's status.</summary>
    private BackgroundCall<Status> OpenOnAnotherThread(Requester? requester = null)
    {
        Requester r = requester ?? _guest;
        return new BackgroundCall<Status>(() =>
        {
            Status s = _k.Host.BeginOpen(r, new OpenRequest { RequestedPath = _file, Access = FileAccessRights.Read }, out bool completion);
            return s.IsSuccess && completion ? _k.Host.CompleteOpen(r, new OpenCompletion { File = new FileIdentity(1, 2), Descriptor = -1 }) : s;
        });
    }

    private static IPendedOperation Next(HoldingFilter h)
    {
        Assert.True(h.Held.TryTake(out IPendedOperation? held, Patience), "no operation was held");
        return held!;
    }

    [Fact]
    public void A_held_open_waits_until_the_driver_completes_it_and_the_completion_decides()
    {
        HoldingFilter h = StartHolding();
        BackgroundCall<Status> open = OpenOnAnotherThread();
        IPendedOperation held = Next(h);

        Assert.False(open.IsCompleted);
        Assert.Equal(Status.Success, h.Context.Files.CompletePendedPreOperation(held, PreOperationStatus.Complete, Status.AccessDenied, null));
        Assert.True(open.Wait(Patience));
        Assert.Equal(Status.AccessDenied, open.Result);
        Assert.Equal(PendedOperationState.Completed, held.State);
    }

    [Fact]
    public void A_completion_with_a_post_callback_hands_its_context_to_the_post_callback()
    {
        HoldingFilter h = StartHolding();
        BackgroundCall<Status> open = OpenOnAnotherThread();
        object context = new();

        Assert.Equal(Status.Success, h.Context.Files.CompletePendedPreOperation(Next(h), PreOperationStatus.SuccessWithCallback, Status.Success, context));
        Assert.True(open.Wait(Patience));
        Assert.Equal(Status.Success, open.Result);
        Assert.True(h.PostContexts.TryDequeue(out object? seen));
        Assert.Same(context, seen);
    }

    [Fact]
    public void A_completion_made_inside_the_callback_before_it_returns_pending_is_kept()
    {
        IDriverContext c = null!;
        c = _k.Start(d =>
        {
            d.Files.RegisterFilter(new FilterRegistration
            {
                Name = "early",
                Altitude = "320000",
                Operations = [new FileOperationRegistration
                {
                    Kind = FileOperationKind.Create,
                    PreOperation = (ref FileOperation op) =>
                    {
                        c.Files.PendPreOperation(ref op, null, out IPendedOperation? held);
                        c.Files.CompletePendedPreOperation(held!, PreOperationStatus.Complete, Status.AccessDenied, null);
                        return PreOperationStatus.Pending;
                    },
                }],
            }, out CallbackCookie f);
            return d.SetCallbackOptions(f, Holds);
        });

        Assert.Equal(Status.AccessDenied, _k.Host.BeginOpen(_guest, new OpenRequest { RequestedPath = _file, Access = FileAccessRights.Read }, out _));
    }

    [Fact]
    public void The_operation_carries_the_deadline_a_hold_would_have()
    {
        HoldingFilter h = StartHolding(new CallbackOptions { MaximumHoldTime = TimeSpan.FromSeconds(40) });
        long before = Environment.TickCount64;
        BackgroundCall<Status> open = OpenOnAnotherThread();
        IPendedOperation held = Next(h);

        Assert.True(h.Pre.TryDequeue(out FileOperation op));
        Assert.InRange(op.HoldDeadline, before + 40_000, Environment.TickCount64 + 40_000);
        Assert.Equal(op.HoldDeadline, held.Deadline);
        Assert.InRange(held.Remaining, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(40));
        h.Context.Files.CompletePendedPreOperation(held, PreOperationStatus.SuccessNoCallback, Status.Success, null);
        Assert.True(open.Wait(Patience));
    }

    [Fact]
    public void A_held_open_is_read_from_another_thread_through_the_file_the_host_opened_for_it()
    {
        _k.Host.HeldFiles = new PathOpener(_file);
        HoldingFilter h = StartHolding();
        BackgroundCall<Status> open = OpenOnAnotherThread();
        IPendedOperation held = Next(h);
        Assert.True(h.Pre.TryDequeue(out FileOperation op));

        var buffer = new byte[64];
        int read = 0;
        using var reading = new BackgroundCall<Status>(() => h.Context.Files.ReadFile(held, 4, buffer, out read));
        Assert.True(reading.Wait(Patience));
        Status status = reading.Result;

        Assert.Equal(Status.Success, status);
        Assert.Equal("content the filter reads", System.Text.Encoding.ASCII.GetString(buffer, 0, read)[..24]);
        Assert.Equal(Libc.FileIdentityOf(_file, out FileIdentity file, out _) == 0 ? file : default, op.File);
        h.Context.Files.CompletePendedPreOperation(held, PreOperationStatus.SuccessNoCallback, Status.Success, null);
        Assert.True(open.Wait(Patience));
        Assert.Equal(Status.InvalidDeviceState, h.Context.Files.ReadFile(held, 0, buffer, out _));
    }

    [Fact]
    public void The_descriptor_of_the_held_file_passes_to_the_host_when_the_open_goes_on()
    {
        var opener = new PathOpener(_file);
        _k.Host.HeldFiles = opener;
        IDriverContext c = null!;
        c = _k.Start(d =>
        {
            d.Files.RegisterFilter(new FilterRegistration
            {
                Name = "pass",
                Altitude = "320000",
                Operations = [new FileOperationRegistration
                {
                    Kind = FileOperationKind.Create,
                    PreOperation = (ref FileOperation op) =>
                    {
                        c.Files.PendPreOperation(ref op, null, out IPendedOperation? held);
                        c.Files.CompletePendedPreOperation(held!, PreOperationStatus.SuccessNoCallback, Status.Success, null);
                        return PreOperationStatus.Pending;
                    },
                }],
            }, out CallbackCookie f);
            return d.SetCallbackOptions(f, Holds);
        });

        Assert.Equal(Status.Success, _k.Host.BeginOpen(_guest, new OpenRequest { RequestedPath = _file, Access = FileAccessRights.Read }, out _));
        int fd = _k.Host.TakeHeldFile();

        Assert.Equal(opener.LastNamed, fd);
        Assert.Equal(-1, _k.Host.TakeHeldFile());
        Libc.CloseOwned(fd);
    }

    [Fact]
    public void A_hold_that_times_out_takes_the_deny_verdict_and_the_driver_is_told()
    {
        HoldingFilter h = StartHolding(new CallbackOptions { MaximumHoldTime = TimeSpan.FromMilliseconds(200), TimeoutVerdict = TimeoutVerdict.Deny });
        BackgroundCall<Status> open = OpenOnAnotherThread();
        IPendedOperation held = Next(h);

        Assert.True(open.Wait(Patience));
        Assert.Equal(Status.AccessDenied, open.Result);
        Assert.True(SpinWait.SpinUntil(() => !h.Cancelled.IsEmpty, Patience), "the cancel callback was not called");
        Assert.True(h.Cancelled.TryDequeue(out IPendedOperation? told));
        Assert.Equal((held.Id, PendedOperationState.TimedOut), (told!.Id, told.State));
    }

    [Fact]
    public void A_hold_that_times_out_with_the_allow_verdict_lets_the_open_go_on()
    {
        HoldingFilter h = StartHolding(new CallbackOptions { MaximumHoldTime = TimeSpan.FromMilliseconds(200), TimeoutVerdict = TimeoutVerdict.Allow });
        BackgroundCall<Status> open = OpenOnAnotherThread();
        _ = Next(h);

        Assert.True(open.Wait(Patience));
        Assert.Equal(Status.Success, open.Result);
    }

    [Fact]
    public void Completing_a_hold_twice_returns_AlreadyCompleted()
    {
        HoldingFilter h = StartHolding();
        BackgroundCall<Status> open = OpenOnAnotherThread();
        IPendedOperation held = Next(h);

        Assert.Equal(Status.Success, h.Context.Files.CompletePendedPreOperation(held, PreOperationStatus.SuccessNoCallback, Status.Success, null));
        Assert.Equal(Status.AlreadyCompleted, h.Context.Files.CompletePendedPreOperation(held, PreOperationStatus.Complete, Status.AccessDenied, null));
        Assert.True(open.Wait(Patience));
        Assert.Equal(Status.Success, open.Result);
    }

    [Fact]
    public void Completing_a_hold_after_its_timeout_returns_Timeout()
    {
        HoldingFilter h = StartHolding(new CallbackOptions { MaximumHoldTime = TimeSpan.FromMilliseconds(100) });
        BackgroundCall<Status> open = OpenOnAnotherThread();
        IPendedOperation held = Next(h);
        Assert.True(open.Wait(Patience));

        Assert.Equal(Status.IoTimeout, h.Context.Files.CompletePendedPreOperation(held, PreOperationStatus.SuccessNoCallback, Status.Success, null));
    }

    [Fact]
    public void A_guest_thread_that_no_longer_waits_cancels_its_hold_and_the_driver_is_told_its_id()
    {
        HoldingFilter h = StartHolding();
        BackgroundCall<Status> open = OpenOnAnotherThread();
        IPendedOperation held = Next(h);

        Assert.True(_k.Host.CancelWaiting(_guest));

        Assert.True(open.Wait(Patience));
        Assert.Equal(Status.Cancelled, open.Result);
        Assert.True(SpinWait.SpinUntil(() => !h.Cancelled.IsEmpty, Patience), "the cancel callback was not called");
        Assert.True(h.Cancelled.TryDequeue(out IPendedOperation? told));
        Assert.Equal((held.Id, PendedOperationState.Cancelled), (told!.Id, told.State));
        Assert.Equal(Status.Cancelled, h.Context.Files.CompletePendedPreOperation(held, PreOperationStatus.SuccessNoCallback, Status.Success, null));
    }

    [Fact]
    public void A_word_about_another_call_of_the_same_thread_cancels_nothing()
    {
        HoldingFilter h = StartHolding();
        var call = _guest with { CallId = 7 };
        BackgroundCall<Status> open = OpenOnAnotherThread(call);
        IPendedOperation held = Next(h);

        Assert.False(_k.Host.CancelWaiting(call with { CallId = 6 }), "a late word about the thread's previous call");
        Assert.Equal(PendedOperationState.Held, held.State);
        Assert.True(_k.Host.CancelWaiting(call));
        Assert.True(open.Wait(Patience));
        Assert.Equal(Status.Cancelled, open.Result);
    }

    [Fact]
    public void Completing_with_a_verdict_that_is_not_one_of_the_three_is_InvalidParameter_and_the_hold_stays()
    {
        HoldingFilter h = StartHolding();
        BackgroundCall<Status> open = OpenOnAnotherThread();
        IPendedOperation held = Next(h);

        Assert.Equal(Status.InvalidParameter, h.Context.Files.CompletePendedPreOperation(held, PreOperationStatus.Pending, Status.Success, null));
        Assert.Equal(Status.InvalidParameter, h.Context.Files.CompletePendedPreOperation(held, (PreOperationStatus)42, Status.Success, null));
        Assert.Equal(Status.InvalidParameter, h.Context.Files.CompletePendedPreOperation(held, PreOperationStatus.Complete, Status.Success, null));
        Assert.Equal(PendedOperationState.Held, held.State);
        Assert.Equal(Status.Success, h.Context.Files.CompletePendedPreOperation(held, PreOperationStatus.Complete, Status.AccessDenied, null));
        Assert.True(open.Wait(Patience));
        Assert.Equal(Status.AccessDenied, open.Result);
    }

    [Fact]
    public void A_driver_cannot_complete_another_drivers_hold()
    {
        HoldingFilter h = StartHolding();
        IDriverContext other = _k.Start(_ => Status.Success, "other");
        BackgroundCall<Status> open = OpenOnAnotherThread();
        IPendedOperation held = Next(h);

        Assert.Equal(Status.InvalidHandle, other.Files.CompletePendedPreOperation(held, PreOperationStatus.Complete, Status.AccessDenied, null));
        Assert.Equal(Status.InvalidHandle, other.Files.ReadFile(held, 0, new byte[4], out _));
        Assert.Equal(Status.InvalidParameter, other.Files.CompletePendedPreOperation(null!, PreOperationStatus.Complete, Status.AccessDenied, null));
        h.Context.Files.CompletePendedPreOperation(held, PreOperationStatus.SuccessNoCallback, Status.Success, null);
        Assert.True(open.Wait(Patience));
        Assert.Equal(Status.Success, open.Result);
    }

    [Fact]
    public void A_filter_without_a_hold_time_cannot_pend()
    {
        HoldingFilter h = StartHolding(CallbackOptions.Default);

        Assert.Equal(Status.Success, _k.Host.BeginOpen(_guest, new OpenRequest { RequestedPath = _file, Access = FileAccessRights.Read }, out _));
        Assert.Equal(Status.NotSupported, h.PendStatus);
        Assert.True(h.Pre.TryDequeue(out FileOperation op));
        Assert.Equal(0, op.HoldDeadline);
    }

    [Fact]
    public void The_kernels_own_IO_cannot_be_held()
    {
        HoldingFilter h = StartHolding();

        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Equal(Status.NotSupported, h.PendStatus);
    }

    [Fact]
    public void Pending_outside_a_callback_is_InvalidDeviceState()
    {
        HoldingFilter h = StartHolding();
        var op = new FileOperation { Kind = FileOperationKind.Create, Path = _file };

        Assert.Equal(Status.InvalidDeviceState, h.Context.Files.PendPreOperation(ref op, null, out IPendedOperation? held));
        Assert.Null(held);
    }

    [Fact]
    public void Returning_Pending_without_a_pend_is_a_fault_that_takes_the_timeout_verdict()
    {
        var faults = new ConcurrentQueue<string>();
        _k.Kernel.Events.DriverFault += (d, r) => faults.Enqueue(d + ": " + r);
        IDriverContext c = _k.Start(d =>
        {
            d.Files.RegisterFilter(new FilterRegistration
            {
                Name = "liar",
                Altitude = "320000",
                Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation _) => PreOperationStatus.Pending }],
            }, out CallbackCookie f);
            return d.SetCallbackOptions(f, new CallbackOptions { TimeoutVerdict = TimeoutVerdict.Deny });
        }, "liar");

        Assert.Equal(Status.AccessDenied, _k.Host.BeginOpen(_guest, new OpenRequest { RequestedPath = _file, Access = FileAccessRights.Read }, out _));
        Assert.Contains(faults, f => f.StartsWith("liar:", StringComparison.Ordinal) && f.Contains("Pending without a pend", StringComparison.Ordinal));
    }

    [Fact]
    public void A_pend_followed_by_a_synchronous_verdict_is_withdrawn_and_that_verdict_applies()
    {
        IPendedOperation? held = null;
        IDriverContext c = null!;
        c = _k.Start(d =>
        {
            d.Files.RegisterFilter(new FilterRegistration
            {
                Name = "changed-its-mind",
                Altitude = "320000",
                Operations = [new FileOperationRegistration
                {
                    Kind = FileOperationKind.Create,
                    PreOperation = (ref FileOperation op) =>
                    {
                        c.Files.PendPreOperation(ref op, null, out held);
                        op.Status = Status.AccessDenied;
                        return PreOperationStatus.Complete;
                    },
                }],
            }, out CallbackCookie f);
            return d.SetCallbackOptions(f, Holds);
        });

        Assert.Equal(Status.AccessDenied, _k.Host.BeginOpen(_guest, new OpenRequest { RequestedPath = _file, Access = FileAccessRights.Read }, out _));
        Assert.Equal(PendedOperationState.Withdrawn, held!.State);
        Assert.Equal(Status.InvalidDeviceState, c.Files.CompletePendedPreOperation(held, PreOperationStatus.SuccessNoCallback, Status.Success, null));
        Assert.Equal(0, _k.Kernel.Holds.Count);
    }

    [Fact]
    public void Unregistering_a_filter_ends_its_holds_with_its_timeout_verdict()
    {
        HoldingFilter h = StartHolding(new CallbackOptions { MaximumHoldTime = TimeSpan.FromMinutes(1), TimeoutVerdict = TimeoutVerdict.Deny });
        BackgroundCall<Status> open = OpenOnAnotherThread();
        IPendedOperation held = Next(h);

        Assert.Equal(Status.Success, h.Context.Files.UnregisterFilter(h.Filter));

        Assert.True(open.Wait(Patience));
        Assert.Equal(Status.AccessDenied, open.Result);
        Assert.Equal(PendedOperationState.Cancelled, held.State);
    }

    [Fact]
    public void Only_guest_threads_that_wait_are_held_and_other_guests_are_decided_meanwhile()
    {
        HoldingFilter h = StartHolding();
        BackgroundCall<Status> first = OpenOnAnotherThread(new Requester(50, 51));
        IPendedOperation held = Next(h);
        BackgroundCall<Status> second = OpenOnAnotherThread(new Requester(60, 61));
        IPendedOperation other = Next(h);

        h.Context.Files.CompletePendedPreOperation(other, PreOperationStatus.SuccessNoCallback, Status.Success, null);
        Assert.True(second.Wait(Patience));
        Assert.False(first.IsCompleted, "the first guest's open is still held");
        Assert.Equal((61, 51), (other.RequesterThreadId, held.RequesterThreadId));
        h.Context.Files.CompletePendedPreOperation(held, PreOperationStatus.SuccessNoCallback, Status.Success, null);
        Assert.True(first.Wait(Patience));
    }

    [Fact]
    public void At_the_limit_of_held_operations_a_pend_returns_InsufficientResources()
    {
        HoldingFilter h = StartHolding();
        var opens = new List<BackgroundCall<Status>>();
        var held = new List<IPendedOperation>();
        for (int i = 0; i < Callbacks.HoldTable.Limit; i++)
        {
            opens.Add(OpenOnAnotherThread(new Requester(1000 + i, 1000 + i)));
            held.Add(Next(h));
        }

        Assert.Equal(Status.Success, _k.Host.BeginOpen(new Requester(9000, 9001), new OpenRequest { RequestedPath = _file, Access = FileAccessRights.Read }, out _));
        Assert.Equal(Status.InsufficientResources, h.PendStatus);
        foreach (IPendedOperation p in held)
        {
            h.Context.Files.CompletePendedPreOperation(p, PreOperationStatus.SuccessNoCallback, Status.Success, null);
        }

        Assert.All(opens, o => Assert.True(o.Wait(Patience)));
        Assert.Equal(0, _k.Kernel.Holds.Count);
    }

    [Fact]
    public void A_held_process_creation_is_decided_by_its_completion()
    {
        var held = new BlockingCollection<IPendedOperation>();
        IDriverContext c = null!;
        c = _k.Start(d =>
        {
            d.Processes.RegisterProcessCreate((in ProcessCreateInfo info) =>
            {
                Status s = c.Processes.PendCreate(in info, null, out IPendedOperation? p);
                held.Add(p!);
                return s.IsSuccess ? Status.Pending : Status.Success;
            }, out CallbackCookie r);
            return d.SetCallbackOptions(r, Holds);
        });
        var exec = new BackgroundCall<Status>(() =>
        {
            var f = new ServiceFrame { ProcessId = 70, ThreadId = 71, Create = new ProcessCreateInfo { ProcessId = 70, ImagePath = "/usr/bin/unknown", CommandLine = "" } };
            return _k.Kernel.SystemCall(SystemService.CreateProcess, ref f);
        });
        Assert.True(held.TryTake(out IPendedOperation? h, Patience));

        Assert.Equal(Status.InvalidParameter, c.Processes.CompletePendedCreate(h!, Status.Pending));
        Assert.Equal(Status.Success, c.Processes.CompletePendedCreate(h!, Status.AccessDenied));
        Assert.True(exec.Wait(Patience));
        Assert.Equal(Status.AccessDenied, exec.Result);
        Assert.Equal(PendedOperationKind.ProcessCreate, h!.Kind);
    }

    [Fact]
    public void A_held_classification_takes_the_result_of_its_completion()
    {
        var held = new BlockingCollection<IPendedOperation>();
        IDriverContext c = null!;
        c = _k.Start(d =>
        {
            d.Network.AddSublayer("ask", 1, out CallbackCookie sub);
            d.Network.RegisterCallout("ask", (in NetworkClassifyContext ctx) =>
            {
                Status s = c.Network.PendClassify(in ctx, null, out IPendedOperation? p);
                held.Add(p!);
                return s.IsSuccess ? ClassifyResult.Pending : ClassifyResult.Continue;
            }, out CallbackCookie callout);
            d.SetCallbackOptions(callout, Holds);
            return d.Network.AddFilter(new NetworkFilter { Name = "ask", Layer = NetworkLayer.ConnectV4, Sublayer = sub, Action = NetworkAction.Callout, Callout = callout }, out _);
        });
        var connect = new BackgroundCall<Status>(() =>
        {
            var f = new ServiceFrame
            {
                ProcessId = 80,
                ThreadId = 81,
                Network = new NetworkClassifyContext { Layer = NetworkLayer.ConnectV4, RemoteAddress = IPAddress.Loopback, RemotePort = 8080, ApplicationPath = "/usr/bin/curl", ProcessId = 80 },
            };
            return _k.Kernel.SystemCall(SystemService.NetworkClassify, ref f);
        });
        Assert.True(held.TryTake(out IPendedOperation? h, Patience));

        Assert.Equal(Status.InvalidParameter, c.Network.CompletePendedClassify(h!, ClassifyResult.Pending));
        Assert.Equal(Status.Success, c.Network.CompletePendedClassify(h!, ClassifyResult.Block));
        Assert.True(connect.Wait(Patience));
        Assert.Equal(Status.NetworkAccessDenied, connect.Result);
    }

    [Fact]
    public void A_held_handle_operation_gets_the_access_its_completion_grants_and_no_more()
    {
        foreach (int pid in new[] { 100, 200 })
        {
            var f = new ServiceFrame { Create = new ProcessCreateInfo { ProcessId = pid, ImagePath = "/bin/p" + pid, CommandLine = "" } };
            _k.Kernel.SystemCall(SystemService.CreateProcess, ref f);
        }

        var held = new BlockingCollection<IPendedOperation>();
        IDriverContext c = null!;
        c = _k.Start(d =>
        {
            d.Objects.Register(new ObjectCallbackRegistration
            {
                Altitude = "321000",
                PreOperation = (ref ObjectPreOperationInfo info) =>
                {
                    c.Objects.PendOperation(ref info, null, out IPendedOperation? p);
                    held.Add(p!);
                },
            }, out CallbackCookie r);
            return d.SetCallbackOptions(r, Holds);
        });
        var kill = new BackgroundCall<(Status, ProcessAccessRights)>(() =>
        {
            var f = new ServiceFrame { ProcessId = 100, ThreadId = 101, TargetProcessId = 200, DesiredAccess = ProcessAccessRights.Terminate };
            Status s = _k.Kernel.SystemCall(SystemService.OpenProcess, ref f);
            return (s, f.GrantedAccess);
        });
        Assert.True(held.TryTake(out IPendedOperation? h, Patience));

        Assert.Equal(Status.InvalidParameter, c.Objects.CompletePendedOperation(h!, ProcessAccessRights.AllAccess));
        Assert.Equal(Status.Success, c.Objects.CompletePendedOperation(h!, ProcessAccessRights.None));
        Assert.True(kill.Wait(Patience));
        Assert.Equal((Status.AccessDenied, ProcessAccessRights.None), kill.Result);
    }

    /// <summary>The host's part for a test: opens one real path as a host would for a held create.</summary>
    private sealed unsafe class PathOpener(string path) : IHeldFileAccess
    {
        public int LastNamed { get; private set; } = -1;

        public int OpenHeldCreate(out int reader, out FileIdentity file)
        {
            byte[] bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
            fixed (byte* p = bytes)
            {
                int named = Libc.OpenAt(Libc.AT_FDCWD, p, Libc.O_PATH | Libc.O_CLOEXEC, 0);
                reader = Libc.OpenAt(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
                Libc.FileIdentityOf(path, out file, out _);
                LastNamed = named;
                return named;
            }
        }
    }
}
