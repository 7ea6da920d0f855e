using System.Diagnostics;
using System.Globalization;
using Palisade.Api;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Guard;

namespace Palisade.Kernel.Callbacks;

/// <summary>
/// One registration made through the driver API: who owns it, its cookie, its altitude (when the kind has one), its
/// policy for time and faults (<see cref="CallbackOptions"/>), and whether it is disabled (by the driver, or by the kernel
/// after the faults in a row its policy allows). Concrete registrations add their delegates.
/// </summary>
internal abstract class Registration
{
    private static long s_nextCookie = 0x1000;
    private volatile bool _disabled;
    private RegistrationPolicy _policy = RegistrationPolicy.Default;
    private int _consecutiveFaults;

    protected Registration(DriverObject? owner, decimal altitude, string? altitudeText)
    {
        Owner = owner;
        Altitude = altitude;
        AltitudeText = altitudeText;
        Cookie = new CallbackCookie(Interlocked.Increment(ref s_nextCookie));
    }

    /// <summary>The driver that made the registration; null for the kernel's own.</summary>
    public DriverObject? Owner { get; }

    public string OwnerName => Owner?.Name ?? "kernel";

    public CallbackCookie Cookie { get; }

    public decimal Altitude { get; }

    public string? AltitudeText { get; }

    /// <summary>True while the registration is disabled; dispatch skips it.</summary>
    public bool Disabled => _disabled;

    /// <summary>The registration's policy for time and faults, read once per callback.</summary>
    public RegistrationPolicy Policy
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref _policy);
    }

    /// <summary>True when this kind of registration has callbacks at all (sublayers, filters and products do not).</summary>
    public virtual bool HasCallbacks => PrimaryCallback is not null;

    /// <summary>True when callbacks of this kind can hold an operation (minifilters, process create, callouts, object callbacks).</summary>
    public virtual bool CanPend => false;

    /// <summary>Faults in a row so far.</summary>
    public int ConsecutiveFaults => Volatile.Read(ref _consecutiveFaults);

    public void Disable() => ChangeState(this, static r => r._disabled = true);

    private int _disabling;
    private IRegistrationTable? _table;

    /// <summary>Disables the registration for faults; true for the one call that did (concurrent faults disable once).</summary>
    public bool TryDisableForFaults()
    {
        if (_disabled || Interlocked.Exchange(ref _disabling, 1) == 1)
        {
            return false;
        }

        ChangeState(this, static r => r._disabled = true);
        Volatile.Write(ref _disabling, 0);
        return true;
    }

    /// <summary>Enables the registration and forgets its faults in a row.</summary>
    public void Enable()
    {
        Volatile.Write(ref _consecutiveFaults, 0);
        ChangeState(this, static r => r._disabled = false);
    }

    public void SetPolicy(RegistrationPolicy policy) => ChangeState(policy, p => Volatile.Write(ref _policy, p));

    /// <summary>Called by the table that takes the registration: from then on its state changes go through that table.</summary>
    internal void AttachTo(IRegistrationTable table) => Volatile.Write(ref _table, table);

    /// <summary>
    /// Changes the registration's state (enabled, policy) through its table, which opens the guard's sanctioned-change
    /// window when the table is guarded: the guard digests that state, so a change made any other way is corruption.
    /// </summary>
    private void ChangeState<TState>(TState state, Action<TState> change)
    {
        IRegistrationTable? table = Volatile.Read(ref _table);
        if (table is null)
        {
            change(state);
            return;
        }

        table.ChangeEntry(state, change);
    }

    /// <summary>
    /// Adds to a guard digest what decides whether and how this registration is called: its enabled state, its policy
    /// (the object and its values) and its callbacks (each delegate's code pointers and target). Allocation-free.
    /// </summary>
    internal void AppendState(ref GuardHasher hasher)
    {
        hasher.Add(_disabled ? 1UL : 0UL);
        RegistrationPolicy policy = Policy;
        hasher.Add((ulong)(uint)System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(policy));
        hasher.Add(policy.HoldMilliseconds);
        hasher.Add(policy.DenyOnTimeout ? 1UL : 0UL);
        hasher.Add((long)policy.DisableAfterFaults);
        AppendCallbacks(ref hasher);
    }

    /// <summary>Adds every callback the registration holds (the primary one unless a kind holds more).</summary>
    protected virtual void AppendCallbacks(ref GuardHasher hasher) => hasher.Add(PrimaryCallback);

    // Run-down protection, in the manner of EX_RUNDOWN_REF: twice the number of calls in flight, plus 1 once the run-down
    // began (then no new call starts). Not part of the guard's digest: it changes with every call.
    private long _rundown;
    private ManualResetEventSlim? _drained;

    /// <summary>
    /// Counts a call into the registration's callbacks as in flight (ExAcquireRundownProtection); false once the
    /// registration is being removed, and then the callback must not be called. Every true is followed by one
    /// <see cref="ReleaseRundown"/>. Allocation-free: one compare-and-swap.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public bool TryAcquireRundown()
    {
        long v = Volatile.Read(ref _rundown);
        while ((v & 1) == 0)
        {
            long seen = Interlocked.CompareExchange(ref _rundown, v + 2, v);
            if (seen == v)
            {
                return true;
            }

            v = seen;
        }

        return false;
    }

    /// <summary>Ends a call counted by <see cref="TryAcquireRundown"/>; wakes the remover when the run-down has begun.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public void ReleaseRundown()
    {
        long v = Interlocked.Add(ref _rundown, -2);
        Debug.Assert(v >= 0, "a release without an acquire");
        if ((v & 1) != 0)
        {
            Volatile.Read(ref _drained)?.Set();
        }
    }

    /// <summary>Calls in flight now (for tests and diagnostics).</summary>
    public long CallsInFlight => Volatile.Read(ref _rundown) >> 1;

    /// <summary>True once <see cref="WaitForRundown"/> began: no new call starts.</summary>
    public bool IsRunningDown => (Volatile.Read(ref _rundown) & 1) != 0;

    /// <summary>
    /// Stops new calls and waits until the calls in flight have returned (ExWaitForRundownProtectionRelease), except
    /// <paramref name="heldByCaller"/> of them: the calls the calling thread itself is inside (a callback that removes
    /// its own registration), which cannot return before this does. Called once, by the one remover of the
    /// registration, after it left every table.
    /// </summary>
    public void WaitForRundown(int heldByCaller)
    {
        var drained = new ManualResetEventSlim(false);
        Volatile.Write(ref _drained, drained);
        Interlocked.Or(ref _rundown, 1);
        while (true)
        {
            // Reset before the check: a release after the check sets the event, so the wait cannot miss it.
            drained.Reset();
            if (CallsInFlight <= heldByCaller)
            {
                return;
            }

            drained.Wait();
        }
    }

    /// <summary>Counts a fault; returns the faults in a row, this one included.</summary>
    public int RecordFault() => Interlocked.Increment(ref _consecutiveFaults);

    /// <summary>A call returned without fault: the count of faults in a row starts again (a read, and a write only after a fault).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public void RecordSuccess()
    {
        if (_consecutiveFaults != 0)
        {
            Volatile.Write(ref _consecutiveFaults, 0);
        }
    }

    /// <summary>The delegate the guard fingerprints for this registration (the first one when there are several).</summary>
    public abstract Delegate? PrimaryCallback { get; }

    /// <summary>The registration in words, as faults name it (for example <c>minifilter antivirus at 325000</c>).</summary>
    public abstract string Describe();
}

/// <summary>
/// A registration's <see cref="CallbackOptions"/>, validated and in the form dispatch reads: milliseconds, a flag.
/// Immutable; replaced whole.
/// </summary>
internal sealed class RegistrationPolicy
{
    public static readonly RegistrationPolicy Default = new(CallbackOptions.Default);

    public RegistrationPolicy(CallbackOptions options)
    {
        Options = options;
        HoldMilliseconds = (long)options.MaximumHoldTime.TotalMilliseconds;
        DenyOnTimeout = options.TimeoutVerdict == TimeoutVerdict.Deny;
        DisableAfterFaults = options.DisableAfterFaults;
    }

    public CallbackOptions Options { get; }

    /// <summary>How long an operation may be held; 0 when the registration cannot hold.</summary>
    public long HoldMilliseconds { get; }

    public bool DenyOnTimeout { get; }

    public TimeoutVerdict TimeoutVerdict => DenyOnTimeout ? TimeoutVerdict.Deny : TimeoutVerdict.Allow;

    public int DisableAfterFaults { get; }

    /// <summary>Checks options a driver passed; <see cref="Status.Success"/> or <see cref="Status.InvalidParameter"/>.</summary>
    public static Status Validate(CallbackOptions? options, bool canPend)
    {
        if (options is null
            || options.MaximumHoldTime < TimeSpan.Zero
            || options.MaximumHoldTime > CallbackOptions.MaximumHoldTimeLimit
            || (!canPend && options.MaximumHoldTime > TimeSpan.Zero)
            || !Enum.IsDefined(options.TimeoutVerdict)
            || options.DisableAfterFaults is < 0 or > CallbackOptions.DisableAfterFaultsLimit)
        {
            return Status.InvalidParameter;
        }

        return Status.Success;
    }
}

/// <summary>Altitudes as the filter manager spells them: a positive decimal number, compared numerically.</summary>
internal static class Altitude
{
    public static bool TryParse(string? text, out decimal value)
    {
        value = 0;
        if (string.IsNullOrEmpty(text) || text.Length > 24)
        {
            return false;
        }

        int dot = text.IndexOf('.', StringComparison.Ordinal);
        int intDigits = dot < 0 ? text.Length : dot;
        if (intDigits is 0 or > 12)
        {
            return false;
        }

        foreach (char c in text)
        {
            if (c is not (>= '0' and <= '9') and not '.')
            {
                return false;
            }
        }

        return decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value) && value > 0;
    }
}

/// <summary>A table of registrations, as a registration sees it: the place its state changes are made.</summary>
internal interface IRegistrationTable
{
    /// <summary>Applies <paramref name="change"/> under the table's lock, inside the guard's window when the table is guarded.</summary>
    void ChangeEntry<TState>(TState state, Action<TState> change);
}
