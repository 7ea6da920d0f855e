using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Callbacks;

/// <summary>
/// The table of registrations of one callback kind. Dispatch reads an immutable snapshot (no lock, no allocation);
/// registration and removal copy the array under a lock and publish the new one. The guard fingerprints the table
/// through <see cref="Snapshot"/> and learns of legitimate changes through <see cref="Changed"/>.
/// </summary>
internal sealed class CallbackTable<T> : IRegistrationTable where T : Registration
{
    private readonly Lock _lock = new();
    private T[] _entries = [];

    public CallbackTable(string name, int limit, bool byAltitude)
    {
        Name = name;
        Limit = limit;
        ByAltitude = byAltitude;
    }

    public string Name { get; }

    public int Limit { get; }

    /// <summary>True when entries are kept by altitude, highest first (and altitudes are unique); otherwise in registration order.</summary>
    public bool ByAltitude { get; }

    /// <summary>Raised after every change made through this table's own methods (the kernel's sealed path).</summary>
    public event Action<CallbackTable<T>>? Changed;

    /// <summary>
    /// Opens the guard's sanctioned-change window around every publish of a new array and every change of an entry's
    /// state (set by the kernel when the guard protects the table); null when the table is not guarded.
    /// </summary>
    public Guard.GuardGate? ChangeGate { get; set; }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)] // a guard change demands a kernel frame: never inlined into a caller
    private void Publish(T[] next)
    {
        using Guard.GuardChange scope = ChangeGate?.Open() ?? default;
        Volatile.Write(ref _entries, next);
    }

    /// <inheritdoc/>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)] // a guard change demands a kernel frame: never inlined into a caller
    public void ChangeEntry<TState>(TState state, Action<TState> change)
    {
        lock (_lock)
        {
            using Guard.GuardChange scope = ChangeGate?.Open() ?? default;
            change(state);
        }
    }

    /// <summary>The current entries, highest altitude first (or in registration order).</summary>
    public T[] Snapshot => Volatile.Read(ref _entries);

    public int Count => Snapshot.Length;

    public Status Add(T entry)
    {
        lock (_lock)
        {
            T[] old = _entries;
            if (old.Length >= Limit)
            {
                return Status.TooManyRegistrations;
            }

            int at = old.Length;
            if (ByAltitude)
            {
                for (int i = 0; i < old.Length; i++)
                {
                    if (old[i].Altitude == entry.Altitude)
                    {
                        return Status.AltitudeCollision;
                    }
                }

                at = 0;
                while (at < old.Length && old[at].Altitude > entry.Altitude)
                {
                    at++;
                }
            }

            var next = new T[old.Length + 1];
            Array.Copy(old, 0, next, 0, at);
            next[at] = entry;
            entry.AttachTo(this);
            Array.Copy(old, at, next, at + 1, old.Length - at);
            Publish(next);
        }

        Changed?.Invoke(this);
        return Status.Success;
    }

    /// <summary>
    /// Removes a registration and returns once no call into it is in flight (except those of the calling thread itself);
    /// <see cref="Status.InvalidHandle"/> when the cookie names no registration of <paramref name="owner"/>.
    /// </summary>
    public Status Remove(CallbackCookie cookie, DriverObject? owner)
    {
        T removed;
        lock (_lock)
        {
            T[] old = _entries;
            int at = Array.FindIndex(old, e => e.Cookie == cookie && ReferenceEquals(e.Owner, owner));
            if (at < 0)
            {
                return Status.InvalidHandle;
            }

            removed = old[at];
            var next = new T[old.Length - 1];
            Array.Copy(old, 0, next, 0, at);
            Array.Copy(old, at + 1, next, at, old.Length - at - 1);
            Publish(next);
        }

        RunDown(removed);
        Changed?.Invoke(this);
        return Status.Success;
    }

    /// <summary>
    /// Waits, outside the table's lock, until the calls into a removed registration that started before its removal have
    /// returned; no new one starts. The calls the removing thread is itself inside (a callback that unregisters its own
    /// registration) are not waited for: they return after this does. Holds the registration made are cancelled after
    /// (<see cref="Changed"/>), so a hold a call in flight makes is not missed.
    /// </summary>
    private static void RunDown(T removed) => removed.WaitForRundown(CallbackMonitor.CallsOnThisThread(removed));

    public T? Find(CallbackCookie cookie, DriverObject? owner)
    {
        foreach (T e in Snapshot)
        {
            if (e.Cookie == cookie && ReferenceEquals(e.Owner, owner))
            {
                return e;
            }
        }

        return null;
    }

    /// <summary>Removes every entry the driver owns, waiting for the calls into them in flight as <see cref="Remove"/> does; returns how many.</summary>
    public int RemoveOwnedBy(DriverObject owner) => TakeOwnedBy(owner).Length;

    /// <summary>Removes every entry the driver owns, waiting for the calls into them in flight as <see cref="Remove"/> does; returns them.</summary>
    public T[] TakeOwnedBy(DriverObject owner)
    {
        T[] removed;
        lock (_lock)
        {
            T[] old = _entries;
            T[] next = Array.FindAll(old, e => !ReferenceEquals(e.Owner, owner));
            if (next.Length == old.Length)
            {
                return [];
            }

            removed = Array.FindAll(old, e => ReferenceEquals(e.Owner, owner));
            Publish(next);
        }

        foreach (T e in removed)
        {
            RunDown(e);
        }

        Changed?.Invoke(this);
        return removed;
    }
}
