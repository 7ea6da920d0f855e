using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Palisade.Host.Linux.Filtering;
using Palisade.Host.Linux.Launch;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Tests;

/// <summary>
/// Only the waiting guest waits: a decision that blocks, in every mediated family, delays only the guest thread it
/// decides. Each test holds one guest's call in its decision until other guests' calls have been decided meanwhile: if the
/// supervisor stalled on the held one, the others could never be decided and the held one would never be released.
/// </summary>
public sealed class HandOverTests : IDisposable
{
    private const int OthersWhileHeld = 200;
    private readonly Guest _guest = new();

    public HandOverTests() => File.WriteAllText(_guest.PathOf("other.txt"), "other\n");

    public void Dispose() => _guest.Dispose();

    /// <summary>Runs <paramref name="body"/> with <paramref name="shell"/> in the guest's folder (a background job in it stays in the folder).</summary>
    private int Run(ISyscallMediator mediator, string body, string shell = "/bin/sh") =>
        Guest.Run(mediator, shell, ["-c", $"cd '{_guest.Directory}' || exit 9\n{body}"]);

    [GuestFact]
    public void A_held_open_delays_only_its_guest()
    {
        File.WriteAllText(_guest.PathOf("held.txt"), "held\n");
        var mediator = new GateMediator(SyscallFamilies.FileOpen, key => key.EndsWith("held.txt", StringComparison.Ordinal));

        int status = Run(mediator, "cat held.txt > out.txt & p=$!; while kill -0 $p 2>/dev/null; do read l < other.txt; done; wait $p");

        Assert.Equal(0, status);
        Assert.Equal("held\n", File.ReadAllText(_guest.PathOf("out.txt")));
        mediator.AssertOthersWereDecidedWhileHeld();
    }

    [GuestFact]
    public void A_held_path_operation_delays_only_its_guest()
    {
        File.WriteAllText(_guest.PathOf("held.x"), "");
        var mediator = new GateMediator(SyscallFamilies.FileOpen | SyscallFamilies.PathOperations, key => key.StartsWith("path:", StringComparison.Ordinal) && key.EndsWith("held.x", StringComparison.Ordinal));

        int status = Run(mediator, "rm held.x & p=$!; while kill -0 $p 2>/dev/null; do read l < other.txt; done; wait $p");

        Assert.Equal(0, status);
        Assert.False(File.Exists(_guest.PathOf("held.x")));
        mediator.AssertOthersWereDecidedWhileHeld();
    }

    [GuestFact("/bin/echo")]
    public void A_held_exec_delays_only_its_guest()
    {
        File.Copy("/bin/echo", _guest.PathOf("heldecho"));
        File.SetUnixFileMode(_guest.PathOf("heldecho"), UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var mediator = new GateMediator(SyscallFamilies.FileOpen | SyscallFamilies.Exec, key => key.StartsWith("exec:", StringComparison.Ordinal) && key.EndsWith("heldecho", StringComparison.Ordinal));

        int status = Run(mediator, "./heldecho ran > out.txt & p=$!; while kill -0 $p 2>/dev/null; do read l < other.txt; done; wait $p");

        Assert.Equal(0, status);
        Assert.Equal("ran\n", File.ReadAllText(_guest.PathOf("out.txt")));
        mediator.AssertOthersWereDecidedWhileHeld();
    }

    [GuestFact("/bin/bash")]
    public void A_held_connect_delays_only_its_guest()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var mediator = new GateMediator(SyscallFamilies.FileOpen | SyscallFamilies.Network, key => key == "connect:" + port);

        int status = Run(mediator, $"(exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected > out.txt) & p=$!; while kill -0 $p 2>/dev/null; do read l < other.txt; done; wait $p", "/bin/bash");

        Assert.Equal(0, status);
        Assert.Equal("connected\n", File.ReadAllText(_guest.PathOf("out.txt")));
        mediator.AssertOthersWereDecidedWhileHeld();
    }

    [GuestFact("/bin/kill", "/bin/sleep")]
    public void A_held_signal_to_another_process_delays_only_its_guest()
    {
        var mediator = new GateMediator(SyscallFamilies.FileOpen | SyscallFamilies.ProcessAccess, key => key == "signal:15");

        int status = Run(mediator, "sleep 60 & s=$!; /bin/kill -TERM $s & k=$!; while kill -0 $k 2>/dev/null; do read l < other.txt; done; wait $k; wait $s; echo $? > out.txt");

        Assert.Equal(0, status);
        Assert.Equal("143\n", File.ReadAllText(_guest.PathOf("out.txt")));
        mediator.AssertOthersWereDecidedWhileHeld();
    }

    [GuestFact]
    public void A_guest_killed_while_its_decision_is_held_releases_the_thread_that_served_it()
    {
        File.WriteAllText(_guest.PathOf("held.txt"), "held\n");
        var mediator = new GateMediator(SyscallFamilies.FileOpen, key => key.EndsWith("held.txt", StringComparison.Ordinal), releaseOthers: false)
        {
            StartedMarker = _guest.PathOf("started"),
        };
        string script = "cat held.txt & c=$!; while [ ! -e started ]; do :; done; kill -9 $c; wait $c; echo $? > out.txt";
        using var process = SupervisedGuest.Start(Guest.Launcher, mediator, "/bin/sh", ["-c", $"cd '{_guest.Directory}' || exit 9\n{script}"]);

        Assert.Equal(0, process.WaitForExit());
        Assert.True(process.Supervisor.WaitForEnd(TimeSpan.FromSeconds(30)), "a thread that served the killed guest is still there");

        Assert.Equal("137\n", File.ReadAllText(_guest.PathOf("out.txt")));
        Assert.Equal(mediator.HeldThread, Assert.Single(mediator.Gone));
        Assert.Equal(0, process.Supervisor.WaitingThreads);
    }

    /// <summary>
    /// Holds the decision of the one call <c>held</c> selects until <see cref="OthersWhileHeld"/> other decisions were made
    /// after the hold began (or, with <c>releaseOthers</c> false, until the supervisor says its guest no longer waits).
    /// </summary>
    private sealed class GateMediator(SyscallFamilies families, Func<string, bool> held, bool releaseOthers = true) : ISyscallMediator
    {
        private readonly ManualResetEventSlim _release = new(false);
        private int _heldStarted;
        private int _othersWhileHeld;
        private int _othersAtRelease = -1;

        public SyscallFamilies Subscriptions { get; } = families;

        /// <summary>A file the mediator creates when the hold begins, for a guest to wait on.</summary>
        public string? StartedMarker { get; init; }

        public int HeldThread { get; private set; }

        public ulong HeldCall { get; private set; }

        public ConcurrentQueue<int> Gone { get; } = new();

        public void AssertOthersWereDecidedWhileHeld()
        {
            Assert.Equal(1, Volatile.Read(ref _heldStarted));
            Assert.True(Volatile.Read(ref _othersAtRelease) >= OthersWhileHeld, $"{_othersAtRelease} other decisions while held ({_othersWhileHeld} counted, {Gone.Count} gone)");
        }

        private int Decide(in Requester requester, string key)
        {
            if (held(key) && Interlocked.CompareExchange(ref _heldStarted, 1, 0) == 0)
            {
                HeldThread = requester.ThreadId;
                HeldCall = requester.CallId;
                if (StartedMarker is not null)
                {
                    File.WriteAllText(StartedMarker, "");
                }

                // Bounded, so that a stalled supervisor fails the test instead of hanging it: the held call is then denied.
                return _release.Wait(TimeSpan.FromSeconds(60)) ? 0 : 13;
            }

            if (releaseOthers && Volatile.Read(ref _heldStarted) == 1 && Interlocked.Increment(ref _othersWhileHeld) == OthersWhileHeld)
            {
                Volatile.Write(ref _othersAtRelease, OthersWhileHeld);
                _release.Set();
            }

            return 0;
        }

        public int PreOpen(in Requester requester, in OpenCall request) =>
            Decide(in requester, "open:" + Encoding.UTF8.GetString(request.Path)) == 0 ? ISyscallMediator.AllowWithoutPost : 13;

        public int PostOpen(in Requester requester, in OpenCall request, in OpenedFile file) => 0;

        public int TakeHeldFile() => -1;

        public void WaiterGone(in Requester requester)
        {
            // Only the held call counts: the watch may also name a call that was answered just before it looked.
            if (requester.CallId == HeldCall)
            {
                Gone.Enqueue(requester.ThreadId);
                _release.Set();
            }
        }

        public int PathOperation(in Requester requester, in PathOperationCall request) =>
            Decide(in requester, "path:" + Encoding.UTF8.GetString(request.Path));

        public void PathOperationCompleted(in Requester requester, in PathOperationCall request, int error)
        {
        }

        public void Close(in Requester requester, int fd)
        {
        }

        public int Exec(in Requester requester, in ExecCall request) => Decide(in requester, "exec:" + Encoding.UTF8.GetString(request.ImagePath));

        public int Network(in Requester requester, in NetworkCall request) =>
            Decide(in requester, (request.Operation == NetworkOperation.Connect ? "connect:" : "network:") + request.RemotePort);

        public int ProcessAccess(in Requester requester, in ProcessAccessCall request) => Decide(in requester, "signal:" + request.Signal);

        public int ProcessCreate(in Requester requester, in ProcessCreateCall request) => 0;

        public void ProcessStarted(in Requester requester, int parentProcessId)
        {
        }

        public void ThreadStarted(in Requester requester)
        {
        }

        public bool TryTakeEndedProcess(out int processId)
        {
            processId = 0;
            return false;
        }

        public void ProcessExit(in Requester requester, bool wholeProcess, int status)
        {
        }

        public void Drain()
        {
        }
    }
}
