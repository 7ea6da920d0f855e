using System.Collections.Concurrent;
using Palisade.Api;
using Palisade.Kernel.Events;

namespace Palisade.Kernel.Drivers;

/// <summary>
/// A driver's worker threads (the counterpart of IoQueueWorkItem's system worker threads, but per driver, so that one
/// driver's slow work never delays another's): its work items (<see cref="IDriverContext.QueueWorkItem"/>) and the
/// kernel's notifications to it (a hold cancelled, a registration faulted) run here, in the order they were queued, up to
/// <see cref="MaxWorkers"/> at once. Workers start when work arrives and end after <see cref="IdleMilliseconds"/> without.
/// </summary>
internal sealed class DriverWorkQueue
{
    /// <summary>Items of one driver that run at once, each on its own thread.</summary>
    public const int MaxWorkers = 4;

    /// <summary>Items of one driver that may wait.</summary>
    public const int MaxQueued = 4096;

    /// <summary>How long an idle worker waits for work before it ends.</summary>
    public const int IdleMilliseconds = 2000;

    private readonly ConcurrentQueue<(WorkItemCallback Callback, object? State)> _items = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly string _driver;
    private readonly EventStream _events;
    private int _queued;
    private int _workers;
    private int _idle;
    private volatile bool _stopped;

    public DriverWorkQueue(string driver, EventStream events)
    {
        _driver = driver;
        _events = events;
    }

    /// <summary>Workers alive now (for tests).</summary>
    public int Workers => Volatile.Read(ref _workers);

    /// <summary>Queues one item; the statuses of <see cref="IDriverContext.QueueWorkItem"/>.</summary>
    public Status Queue(WorkItemCallback callback, object? state)
    {
        if (_stopped)
        {
            return Status.InvalidDeviceState;
        }

        if (Interlocked.Increment(ref _queued) > MaxQueued)
        {
            Interlocked.Decrement(ref _queued);
            return Status.InsufficientResources;
        }

        _items.Enqueue((callback, state));
        _signal.Release();
        if (Volatile.Read(ref _idle) == 0)
        {
            StartWorker();
        }

        return Status.Success;
    }

    /// <summary>Drops the items still queued and lets the workers end; items already running finish on their own.</summary>
    public void Stop()
    {
        _stopped = true;
        while (_items.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _queued);
        }

        _signal.Release(MaxWorkers);
    }

    private void StartWorker()
    {
        int workers = Volatile.Read(ref _workers);
        while (workers < MaxWorkers)
        {
            int seen = Interlocked.CompareExchange(ref _workers, workers + 1, workers);
            if (seen == workers)
            {
                new Thread(Work) { IsBackground = true, Name = "palisade-driver-" + _driver }.Start();
                return;
            }

            workers = seen;
        }
    }

    private void Work()
    {
        while (true)
        {
            Interlocked.Increment(ref _idle);
            bool signalled = _signal.Wait(IdleMilliseconds);
            Interlocked.Decrement(ref _idle);
            if (_stopped)
            {
                break;
            }

            if (_items.TryDequeue(out var item))
            {
                Interlocked.Decrement(ref _queued);
                Run(item.Callback, item.State);
                continue;
            }

            if (!signalled)
            {
                // Idle: end, unless an item arrived as the wait ended (its signal may have gone to this worker).
                Interlocked.Decrement(ref _workers);
                if (_items.IsEmpty || _stopped)
                {
                    return;
                }

                if (Interlocked.Increment(ref _workers) > MaxWorkers)
                {
                    Interlocked.Decrement(ref _workers);
                    return;
                }
            }
        }

        Interlocked.Decrement(ref _workers);
    }

    private void Run(WorkItemCallback callback, object? state)
    {
        try
        {
            callback(state);
        }
        catch (Exception e)
        {
            // Contained: the worker goes on with the next item.
            _events.WriteDriverFault(_driver, "work item threw " + e.GetType().Name + ": " + e.Message);
        }
    }
}
