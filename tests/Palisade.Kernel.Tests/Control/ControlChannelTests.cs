// Several kernels on one home, in one process (the hive's flock conflicts between two opens of one process too): the
// first holds the hive and serves run/control.sock; the others follow its registry, forward their writes to it, and
// take the hive over when it ends. `palisade reg` is a client of the same socket.
using System.Diagnostics;
using System.Net.Sockets;
using Palisade.Api;
using Palisade.Kernel.Control;
using Palisade.Kernel.Drivers;
using Palisade.Interop;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Tests.Control;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ControlChannelTests : IDisposable
{
    private const string Key = @"\Registry\Machine\Software\Vendor";
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(1);
    private readonly string _home = Directory.CreateTempSubdirectory("palisade-control-").FullName;
    private readonly List<PalisadeKernel> _kernels = [];

    public void Dispose()
    {
        foreach (PalisadeKernel k in _kernels)
        {
            k.Dispose();
        }

        Directory.Delete(_home, recursive: true);
    }

    private (PalisadeKernel Kernel, SharedRegistry Registry) Boot()
    {
        Assert.Equal(Status.Success, SharedRegistry.Join(_home, SharedRegistry.DefaultPatience, out SharedRegistry? registry));
        var kernel = new PalisadeKernel(new KernelOptions(KernelFlavor.Protected, _home), registry);
        _kernels.Add(kernel);
        return (kernel, registry!);
    }

    private static Status Set(PalisadeKernel k, string name, uint value)
    {
        var r = new RegistryClient(k, processId: 0);
        Status s = r.CreateKey(Key, out _);
        return s.IsError ? s : r.SetValue(Key, name, RegistryValueType.DWord, RegistryData.FromDWord(value));
    }

    private static uint? Get(PalisadeKernel k, string name) =>
        new RegistryClient(k, processId: 0).QueryValue(Key, name, out _, out ReadOnlyMemory<byte> data).IsSuccess ? BitConverter.ToUInt32(data.Span) : null;

    private static void Start(PalisadeKernel k, Func<IDriverContext, Status> load) =>
        Assert.Equal(Status.Success, k.StartDriver(new DriverObject("guard" + k.GetHashCode(), "tests", "1.0", "", ""), new LambdaDriver(load), new Dictionary<string, string>()));

    [Fact]
    public void The_first_kernel_holds_the_hive_and_serves_a_socket_only_its_user_can_reach()
    {
        (PalisadeKernel kernel, SharedRegistry registry) = Boot();
        string socket = ControlSocket.PathOf(_home);

        Assert.True(registry.IsHolder);
        Assert.Null(registry.ServeError);
        Assert.Equal(0, Libc.OwnerAndMode(RunDirectory.PathOf(_home), out uint dirOwner, out uint dirMode, out _));
        Assert.Equal(0, Libc.OwnerAndMode(socket, out uint owner, out uint mode, out FileIdentity identity));
        Assert.Equal(Convert.ToUInt32("40700", 8), dirMode);
        Assert.Equal(Convert.ToUInt32("140600", 8), mode);
        Assert.Equal(Libc.GetEUid(), owner);
        Assert.Equal(Libc.GetEUid(), dirOwner);
        KernelSocket listed = Assert.Single(kernel.OwnedSockets.Snapshot);
        Assert.Equal(socket, listed.Path);
        Assert.Equal(identity, listed.Identity);
        Assert.True(kernel.OwnedSockets.Contains(identity));
    }

    [Fact]
    public void The_socket_goes_away_with_the_kernel()
    {
        (PalisadeKernel kernel, _) = Boot();

        kernel.Dispose();

        Assert.False(File.Exists(ControlSocket.PathOf(_home)));
        Assert.Empty(kernel.OwnedSockets.Snapshot);
        Assert.False(ControlClient.TryConnect(ControlSocket.PathOf(_home), out _));
    }

    [AsAnotherUserFact]
    public void Another_user_cannot_connect_to_the_control_socket()
    {
        // The home itself lets anyone in: only the run directory (0700) and the socket (0600) keep nobody out.
        File.SetUnixFileMode(_home, (UnixFileMode)Convert.ToInt32("755", 8));
        Boot();
        var psi = new ProcessStartInfo("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c",
            "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(sys.argv[1]); print('connected')\nexcept OSError as e:\n print(type(e).__name__)", ControlSocket.PathOf(_home)])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using Process p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(Patience));

        Assert.Equal("PermissionError", output.Trim());
    }

    [Fact]
    public void The_kernel_does_not_listen_in_a_run_directory_others_can_enter()
    {
        Directory.CreateDirectory(RunDirectory.PathOf(_home));
        File.SetUnixFileMode(RunDirectory.PathOf(_home), (UnixFileMode)Convert.ToInt32("755", 8));

        (PalisadeKernel kernel, SharedRegistry registry) = Boot();

        Assert.True(registry.IsHolder);
        Assert.Contains("it must be 700", registry.ServeError, StringComparison.Ordinal);
        Assert.False(File.Exists(ControlSocket.PathOf(_home)));
        Assert.Empty(kernel.OwnedSockets.Snapshot);
    }

    [Fact]
    public void An_operation_through_the_socket_is_decided_by_the_registry_callbacks_as_the_administrators()
    {
        (PalisadeKernel kernel, _) = Boot();
        int caller = -1;
        Start(kernel, c => c.Registry.Register((ref RegistryNotification n) =>
        {
            if (n.NotifyClass == RegistryNotifyClass.PreSetValue)
            {
                caller = n.ProcessId;
                return n.ValueName == "locked" ? Status.AccessDenied : Status.Success;
            }

            return Status.Success;
        }, "320000", out _));
        Assert.True(ControlClient.TryConnect(ControlSocket.PathOf(_home), out ControlClient? client));
        using (client)
        {
            var reg = new RegistryClient(r => client!.Perform(r, out _));
            Assert.Equal(Status.Success, reg.CreateKey(Key, out bool created));
            Assert.True(created);

            Assert.Equal(Status.AccessDenied, reg.SetValue(Key, "locked", RegistryValueType.DWord, RegistryData.FromDWord(1)));
            Assert.Equal(Status.Success, reg.SetValue(Key, "free", RegistryValueType.DWord, RegistryData.FromDWord(7)));
            Assert.Equal(Status.Success, reg.QueryValue(Key, "free", out RegistryValueType type, out ReadOnlyMemory<byte> data));
            Assert.Equal(RegistryValueType.DWord, type);
            Assert.Equal(7u, BitConverter.ToUInt32(data.Span));
            Assert.Equal(Status.ObjectNameNotFound, reg.QueryValue(Key, "locked", out _, out _));
        }

        Assert.Equal(0, caller);
        Assert.Equal(7u, Get(kernel, "free"));
    }

    [Fact]
    public void A_second_kernel_follows_the_holders_registry_copy_and_changes()
    {
        (PalisadeKernel holder, _) = Boot();
        Assert.Equal(Status.Success, Set(holder, "before", 1));
        (PalisadeKernel follower, SharedRegistry followed) = Boot();
        var replicated = new System.Collections.Concurrent.BlockingCollection<string?>();
        followed.Replicated += r => replicated.Add(r?.ValueName);

        Assert.False(followed.IsHolder);
        Assert.Equal(1u, Get(follower, "before"));
        Assert.Equal(Status.Success, Set(holder, "after", 2));

        Assert.True(replicated.TryTake(out string? name, Patience), "the change did not reach the follower");
        Assert.Equal("after", name);
        Assert.Equal(2u, Get(follower, "after"));
    }

    [Fact]
    public void A_followers_write_is_decided_by_the_holders_callbacks_and_visible_when_it_returns()
    {
        (PalisadeKernel holder, _) = Boot();
        Start(holder, c => c.Registry.Register((ref RegistryNotification n) =>
            n.NotifyClass == RegistryNotifyClass.PreSetValue && n.ValueName == "locked" ? Status.AccessDenied : Status.Success, "320000", out _));
        (PalisadeKernel follower, _) = Boot();

        Assert.Equal(Status.AccessDenied, Set(follower, "locked", 1));
        Assert.Equal(Status.Success, Set(follower, "free", 3));

        Assert.Equal(3u, Get(follower, "free"));
        Assert.Equal(3u, Get(holder, "free"));
        Assert.Null(Get(holder, "locked"));
    }

    [Fact]
    public void When_the_holder_ends_a_follower_takes_the_hive_over_and_serves_the_socket()
    {
        (PalisadeKernel holder, _) = Boot();
        Assert.Equal(Status.Success, Set(holder, "kept", 5));
        (PalisadeKernel follower, SharedRegistry followed) = Boot();
        using var replaced = new ManualResetEventSlim();
        followed.Replicated += r =>
        {
            if (r is null)
            {
                replaced.Set();
            }
        };

        holder.Dispose();

        Assert.True(replaced.Wait(Patience), "the follower did not take the hive over");
        Assert.True(followed.IsHolder);
        Assert.True(ControlClient.TryConnect(ControlSocket.PathOf(_home), out ControlClient? client));
        using (client)
        {
            var reg = new RegistryClient(r => client!.Perform(r, out _));
            Assert.Equal(Status.Success, reg.QueryValue(Key, "kept", out _, out ReadOnlyMemory<byte> data));
            Assert.Equal(5u, BitConverter.ToUInt32(data.Span));
            Assert.Equal(Status.Success, reg.SetValue(Key, "new", RegistryValueType.DWord, RegistryData.FromDWord(6)));
        }

        Assert.Equal(6u, Get(follower, "new"));
        Assert.Contains(follower.OwnedSockets.Snapshot, s => s.Path == ControlSocket.PathOf(_home));
    }

    [Fact]
    public void A_malformed_frame_closes_that_connection_and_the_kernel_keeps_serving()
    {
        (PalisadeKernel kernel, _) = Boot();
        using (var raw = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            raw.Connect(new UnixDomainSocketEndPoint(ControlSocket.PathOf(_home)));
            raw.Send([5, 0, 0, 0, 1, 200, 1, 2, 3]);
            byte[] buffer = new byte[16];
            Assert.Equal(0, raw.Receive(buffer));
        }

        Assert.True(ControlClient.TryConnect(ControlSocket.PathOf(_home), out ControlClient? client));
        using (client)
        {
            var reg = new RegistryClient(r => client!.Perform(r, out _));
            Assert.Equal(Status.Success, reg.CreateKey(Key, out _));
        }

        // The key the second connection created exists (the value does not).
        Assert.Equal(Status.ObjectNameNotFound, new RegistryClient(kernel, 0).QueryValue(Key, "missing", out _, out _));
    }
}

/// <summary>A fact that runs a program as the user nobody: it needs root and setpriv(1).</summary>
public sealed class AsAnotherUserFactAttribute : FactAttribute
{
    public AsAnotherUserFactAttribute()
    {
        if (Libc.GetEUid() != 0)
        {
            Skip = "needs root, to run a client as another user (nobody)";
        }
        else if (!File.Exists("/usr/bin/setpriv") || !File.Exists("/usr/bin/python3"))
        {
            Skip = "needs /usr/bin/setpriv and /usr/bin/python3";
        }
    }
}
