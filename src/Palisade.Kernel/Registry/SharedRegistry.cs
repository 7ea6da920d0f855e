// The registry of a kernel whose home other processes share: `palisade reg` while the kernel runs, and other
// `palisade run`s on the same home.
//
// A hive has one writer (its flock). The first kernel to take it is the hive's *holder*: it serves the control socket
// (run/control.sock), performs the operations `palisade reg` sends there as registry system services (its registry
// callbacks decide them), and numbers every change it commits. A kernel that finds the hive taken *follows* the
// holder: it subscribes on the control socket, builds an in-memory copy from the holder's snapshot, then applies each
// change in the holder's order; it reads from its copy and forwards its writes to the holder. When the holder ends,
// each follower tries to take the hive: the first that locks it becomes the holder (its copy is exactly what the hive
// file says, plus whatever `palisade reg` wrote to the file directly meanwhile, which it reads then), and the others
// follow it. Each change of the copy is reported (Replicated) so that drivers learn of changes to their parameters.
using System.Collections.Concurrent;
using Palisade.Api;
using Palisade.Kernel.Control;

namespace Palisade.Kernel.Registry;

internal sealed class SharedRegistry : IRegistryStore
{
    /// <summary>How long a kernel waits, when the hive is taken and its holder does not answer yet (it is starting,
    /// or `palisade reg` holds the file for a moment), before it gives up.</summary>
    public static readonly TimeSpan DefaultPatience = TimeSpan.FromSeconds(10);

    /// <summary>Changes queued for one follower; a follower that falls this far behind is disconnected, and then
    /// subscribes again from a fresh copy.</summary>
    private const int FollowerQueue = 4096;

    /// <summary>How long a follower's forwarded write waits for its own change to come back through the feed.</summary>
    private static readonly TimeSpan EchoPatience = TimeSpan.FromSeconds(5);

    [ThreadStatic]
    private static ulong t_lastChange;

    private readonly string _home;
    private readonly Lock _writes = new();
    private readonly object _progress = new();
    private readonly List<BlockingCollection<byte[]>> _followers = [];
    private volatile RegistryManager _store;
    private volatile bool _holder;
    private ulong _changes;
    private ControlClient? _feed;
    private Thread? _feedThread;
    private ControlSocket? _socket;
    private IControlTarget? _target;
    private KernelSockets? _owned;
    private volatile bool _disposed;

    private SharedRegistry(string home, RegistryManager store, bool holder, ControlClient? feed, ulong changes)
    {
        _home = home;
        _store = store;
        _holder = holder;
        _feed = feed;
        _changes = changes;
    }

    /// <summary>Raised on the feed's thread after a change of another kernel's was applied to this copy, with the
    /// change; null when the whole copy was replaced (after the holder changed).</summary>
    public event Action<RegistryRequest?>? Replicated;

    /// <summary>True while this kernel holds the hive file.</summary>
    public bool IsHolder => _holder;

    /// <summary>Why this kernel, holding the hive, does not serve the control socket; null when it does (or follows).</summary>
    public string? ServeError { get; private set; }

    /// <summary>The number of the last change committed (holder) or applied (follower).</summary>
    public ulong Changes => Interlocked.Read(ref _changes);

    /// <summary>The number of the change the last registry operation on this thread committed, or 0.</summary>
    public static ulong LastChange => t_lastChange;

    public static void ResetLastChange() => t_lastChange = 0;

    /// <summary>The hive file of a home.</summary>
    public static string HivePath(string home) => Path.Combine(home, "registry.hive");

    /// <summary>
    /// Takes the hive of <paramref name="home"/>, or follows the kernel that holds it.
    /// </summary>
    /// <param name="home">The kernel's home (the hive is <c>registry.hive</c> there).</param>
    /// <param name="patience">How long to keep trying while the hive is taken and nobody answers on the control socket.</param>
    /// <param name="registry">The registry on success.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.SharingViolation"/> when the hive stayed taken by a
    /// process that does not answer; or the statuses of <see cref="RegistryManager.Open"/>.</returns>
    public static Status Join(string home, TimeSpan patience, out SharedRegistry? registry)
    {
        registry = null;
        DateTime deadline = DateTime.UtcNow + patience;
        while (true)
        {
            Status s = TryJoin(home, out RegistryManager? store, out bool holder, out ControlClient? feed, out ulong changes);
            if (s.IsSuccess)
            {
                registry = new SharedRegistry(home, store!, holder, feed, changes);
                if (!holder)
                {
                    registry.StartFollowing();
                }

                return s;
            }

            if (s != Status.SharingViolation || DateTime.UtcNow >= deadline)
            {
                return s;
            }

            Thread.Sleep(20);
        }
    }

    /// <summary>
    /// Called once the kernel is built: as the holder, starts serving the control socket for <paramref name="target"/>
    /// (the kernel: registry system services of the administrator, and a bug check on request); a follower keeps both
    /// for the day it takes the hive over.
    /// </summary>
    public void Serve(IControlTarget target, KernelSockets owned)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(owned);
        lock (_writes)
        {
            _target = target;
            _owned = owned;
            if (_holder)
            {
                StartServing();
            }
        }
    }

    public Status Perform(RegistryRequest request)
    {
        if (request is null)
        {
            return Status.InvalidParameter;
        }

        if (!request.IsWrite)
        {
            return _store.Perform(request);
        }

        ControlClient? holder = null;
        lock (_writes)
        {
            if (_disposed)
            {
                return Status.InvalidDeviceState;
            }

            if (_holder)
            {
                Status s = _store.Perform(request);
                if (s.IsSuccess && request.MadeChange)
                {
                    ulong number = ++_changes;
                    t_lastChange = number;
                    byte[] frame = ControlProtocol.Change(number, request);
                    foreach (BlockingCollection<byte[]> follower in _followers)
                    {
                        if (!follower.IsAddingCompleted && !follower.TryAdd(frame))
                        {
                            follower.CompleteAdding();
                        }
                    }
                }

                return s;
            }

            if (!ControlClient.TryConnect(ControlSocket.PathOf(_home), out holder))
            {
                return Status.SharingViolation;
            }
        }

        // A follower's write is performed by the holder (its callbacks decide it) and comes back through the feed;
        // wait for it, so that a read after the write sees it.
        Status status;
        ulong change;
        using (holder)
        {
            status = holder!.Perform(request, out change);
        }

        if (change != 0)
        {
            WaitForChange(change);
        }

        return status;
    }

    /// <summary>
    /// Serves one subscription (on the control socket's connection thread): the snapshot, numbered 0, then the end of
    /// the snapshot with the number of the last change it includes, then every later change, until the follower goes
    /// away or falls too far behind.
    /// </summary>
    internal void Feed(Stream stream)
    {
        var queue = new BlockingCollection<byte[]>(FollowerQueue);
        List<byte[]> snapshot;
        ulong last;
        lock (_writes)
        {
            if (!_holder || _disposed)
            {
                return;
            }

            snapshot = Snapshot(_store);
            last = _changes;
            _followers.Add(queue);
        }

        try
        {
            foreach (byte[] frame in snapshot)
            {
                ControlProtocol.WriteFrame(stream, frame);
            }

            var end = new ControlWriter(9);
            end.WriteByte((byte)ControlMessage.SnapshotEnd);
            end.WriteUInt64(last);
            ControlProtocol.WriteFrame(stream, end.ToArray());
            foreach (byte[] frame in queue.GetConsumingEnumerable())
            {
                ControlProtocol.WriteFrame(stream, frame);
            }
        }
        finally
        {
            lock (_writes)
            {
                _followers.Remove(queue);
            }

            queue.Dispose();
        }
    }

    public void Dispose()
    {
        Thread? feedThread;
        lock (_writes)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (BlockingCollection<byte[]> follower in _followers)
            {
                follower.CompleteAdding();
            }

            feedThread = _feedThread;
            _feed?.Dispose();
        }

        _socket?.Dispose();
        feedThread?.Join();
        _store.Dispose();
        lock (_progress)
        {
            Monitor.PulseAll(_progress);
        }
    }

    /// <summary>One attempt: the hive's lock, else a subscription to its holder.</summary>
    private static Status TryJoin(string home, out RegistryManager? store, out bool holder, out ControlClient? feed, out ulong changes)
    {
        holder = false;
        feed = null;
        changes = 0;
        Status s = RegistryManager.Open(HivePath(home), null, out store);
        if (s.IsSuccess)
        {
            holder = true;
            return s;
        }

        if (s != Status.SharingViolation || !ControlClient.TryConnect(ControlSocket.PathOf(home), out feed))
        {
            return s;
        }

        try
        {
            feed!.Subscribe();
            if (ReadSnapshot(feed.Stream, out store, out changes))
            {
                return Status.Success;
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The holder went away while sending its copy: try again.
        }

        feed!.Dispose();
        feed = null;
        return Status.SharingViolation;
    }

    /// <summary>Builds a copy from the changes numbered 0 up to the end of the snapshot.</summary>
    private static bool ReadSnapshot(Stream stream, out RegistryManager? store, out ulong last)
    {
        store = RegistryManager.CreateVolatile();
        last = 0;
        while (ControlProtocol.TryReadFrame(stream, out byte[] payload))
        {
            var reader = new ControlReader(payload);
            if (!reader.TryReadByte(out byte kind) || !reader.TryReadUInt64(out ulong number))
            {
                break;
            }

            if (kind == (byte)ControlMessage.SnapshotEnd && reader.AtEnd)
            {
                last = number;
                return true;
            }

            if (kind != (byte)ControlMessage.Change || number != 0
                || !ControlProtocol.TryReadRequest(ref reader, out RegistryRequest? change) || !reader.AtEnd
                || store.Perform(change!).IsError)
            {
                break;
            }
        }

        store.Dispose();
        store = null;
        return false;
    }

    /// <summary>Every key below the predefined ones and every value, as changes that rebuild the tree in order.</summary>
    private static List<byte[]> Snapshot(RegistryManager store)
    {
        var frames = new List<byte[]>();
        var subkeys = new List<string>();
        var values = new List<RegistryValueInfo>();
        var pending = new Stack<string>();
        pending.Push("\\" + RegistryPath.RootName);
        while (pending.TryPop(out string? path))
        {
            if (store.EnumerateValues(path, values).IsSuccess)
            {
                foreach (RegistryValueInfo v in values)
                {
                    var set = new RegistryRequest();
                    set.Reset(RegistryOperation.SetValue, path);
                    set.ValueName = v.Name;
                    set.ValueType = v.Type;
                    set.Data = v.Data;
                    frames.Add(ControlProtocol.Change(0, set));
                }
            }

            if (store.EnumerateSubkeys(path, subkeys).IsSuccess)
            {
                foreach (string name in subkeys)
                {
                    string child = path + "\\" + name;
                    if (!IsPredefined(child))
                    {
                        var create = new RegistryRequest();
                        create.Reset(RegistryOperation.CreateKey, child);
                        frames.Add(ControlProtocol.Change(0, create));
                    }

                    pending.Push(child);
                }
            }
        }

        return frames;
    }

    private static bool IsPredefined(string path) =>
        string.Equals(path, @"\Registry\Machine", StringComparison.OrdinalIgnoreCase)
        || string.Equals(path, @"\Registry\User", StringComparison.OrdinalIgnoreCase);

    private void StartServing()
    {
        if (_target is null || _owned is null || _socket is not null)
        {
            return;
        }

        ServeError = ControlSocket.Start(_home, _target, this, _owned, out _socket);
    }

    private void StartFollowing()
    {
        _feedThread = new Thread(Follow) { IsBackground = true, Name = "palisade-registry-feed" };
        _feedThread.Start();
    }

    /// <summary>The follower's thread: applies the holder's changes; when the holder goes, takes over or follows the next.</summary>
    private void Follow()
    {
        while (!_disposed)
        {
            try
            {
                Stream stream = _feed!.Stream;
                while (ApplyNext(stream))
                {
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                // The holder ended (or this kernel is shutting down).
            }

            if (!Rejoin())
            {
                return;
            }
        }
    }

    private bool ApplyNext(Stream stream)
    {
        if (!ControlProtocol.TryReadFrame(stream, out byte[] payload))
        {
            return false;
        }

        var reader = new ControlReader(payload);
        if (!reader.TryReadByte(out byte kind) || kind != (byte)ControlMessage.Change || !reader.TryReadUInt64(out ulong number)
            || !ControlProtocol.TryReadRequest(ref reader, out RegistryRequest? change) || !reader.AtEnd)
        {
            return false;
        }

        _store.Perform(change!);
        lock (_progress)
        {
            Interlocked.Exchange(ref _changes, number);
            Monitor.PulseAll(_progress);
        }

        Replicated?.Invoke(change);
        return true;
    }

    private void WaitForChange(ulong change)
    {
        DateTime deadline = DateTime.UtcNow + EchoPatience;
        lock (_progress)
        {
            while (Interlocked.Read(ref _changes) < change && !_disposed && DateTime.UtcNow < deadline)
            {
                Monitor.Wait(_progress, EchoPatience);
            }
        }
    }

    /// <summary>After the holder went away: takes the hive, or follows whoever did. False when shutting down or
    /// when this kernel became the holder (the feed ends).</summary>
    private bool Rejoin()
    {
        while (!_disposed)
        {
            Status s = TryJoin(_home, out RegistryManager? store, out bool holder, out ControlClient? feed, out ulong changes);
            if (s.IsSuccess)
            {
                lock (_writes)
                {
                    if (_disposed)
                    {
                        feed?.Dispose();
                        store!.Dispose();
                        return false;
                    }

                    _feed?.Dispose();
                    _feed = feed;
                    _store = store!;
                    _holder = holder;
                    Interlocked.Exchange(ref _changes, changes);
                    if (holder)
                    {
                        StartServing();
                    }
                }

                Replicated?.Invoke(null);
                return !holder;
            }

            Thread.Sleep(50);
        }

        return false;
    }
}
