using Palisade.Kernel;
using System.Runtime.InteropServices;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Guard;

namespace Palisade.Guard.Tests;

/// <summary>The guard as the kernel uses it: protect, change through the sealed path, and get caught changing outside it.</summary>
public sealed unsafe class GuardTests
{
    [Fact]
    public void Running_guard_raises_nothing_while_nothing_changes()
    {
        using var kernel = new TestGuard();

        kernel.WaitRounds(5);

        Assert.Equal(0, kernel.Sink.Count);
    }

    [Fact]
    public void Sanctioned_change_through_the_kernels_own_table_is_rebaselined()
    {
        using var kernel = new TestGuard();
        var table = new KernelTable();
        table.Table.ChangeGate = new GuardGate(kernel.Guard, kernel.Authority, kernel.Guard.Protect(table));

        Assert.Equal(Palisade.Api.Status.Success, table.Table.Add(KernelTable.Entry()));
        table.Table.Snapshot[0].Disable();

        kernel.WaitRounds(5);
        Assert.Equal(0, kernel.Sink.Count);
    }

    [Fact]
    public void A_change_window_asked_for_by_code_outside_the_kernel_is_refused_even_with_the_authority()
    {
        using var kernel = new TestGuard();
        int region = kernel.Guard.Protect(new CallbackTable());

        var refused = Assert.Throws<UnauthorizedAccessException>(() => kernel.Guard.BeginChange(kernel.Authority, region));
        Assert.Contains(typeof(GuardTests).Assembly.GetName().Name!, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_borrowed_gate_opens_no_window_for_code_outside_the_kernel()
    {
        using var kernel = new TestGuard();
        var gate = new GuardGate(kernel.Guard, kernel.Authority, kernel.Guard.Protect(new CallbackTable()));

        Assert.Throws<UnauthorizedAccessException>(() => gate.Open());
        var byReflection = Assert.Throws<System.Reflection.TargetInvocationException>(
            () => typeof(GuardGate).GetMethod("Open", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!.Invoke(gate, null));
        Assert.IsType<UnauthorizedAccessException>(byReflection.InnerException);
    }

    [Fact]
    public void No_change_of_protected_code_is_ever_sanctioned()
    {
        using var kernel = new TestGuard();
        int code = kernel.Guard.Protect(typeof(GuardContext).GetMethod(nameof(GuardContext.WatchPeers), System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!);

        var refused = Assert.Throws<UnauthorizedAccessException>(() => kernel.Guard.BeginChange(kernel.Authority, code));
        Assert.Contains("is code or a fixed table", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_registration_disabled_outside_the_kernels_path_raises_0x109_with_the_callout_type()
    {
        using var kernel = new TestGuard();
        var table = new KernelTable();
        table.Table.ChangeGate = new GuardGate(kernel.Guard, kernel.Authority, kernel.Guard.Protect(table));
        Assert.Equal(Palisade.Api.Status.Success, table.Table.Add(KernelTable.Entry()));

        typeof(Registration).GetField("_disabled", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!
            .SetValue(table.Table.Snapshot[0], true);

        BugCheckReport report = kernel.Sink.Wait();
        Assert.Equal((ulong)GuardRegionType.NotificationCallout, report.Parameter4);
        Assert.Contains(report.Dump.Changes, c => c.Description?.Contains("now: registered by kernel (disabled", StringComparison.Ordinal) == true);
    }

    [Fact]
    public void A_delegate_whose_code_pointer_is_rewritten_in_place_raises_0x109()
    {
        using var kernel = new TestGuard();
        var table = new KernelTable();
        table.Table.ChangeGate = new GuardGate(kernel.Guard, kernel.Authority, kernel.Guard.Protect(table));
        var entry = KernelTable.Entry();
        Assert.Equal(Palisade.Api.Status.Success, table.Table.Add(entry));
        Palisade.Api.ProcessCreateCallback other = static (in Palisade.Api.ProcessCreateInfo _) => Palisade.Api.Status.AccessDenied;

        DelegateFields.MethodPtr(entry.Callback) = DelegateFields.MethodPtr(other);

        BugCheckReport report = kernel.Sink.Wait();
        Assert.Equal((ulong)GuardRegionType.NotificationCallout, report.Parameter4);
    }

    [Fact]
    public void The_schedule_keeps_no_state_from_which_the_next_sweep_could_be_predicted()
    {
        var schedule = new GuardSchedule(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2));

        System.Reflection.FieldInfo[] fields = typeof(GuardSchedule).GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public);
        Assert.All(fields, f => Assert.True(f.IsInitOnly, $"{f.Name} changes between waits"));
        Assert.InRange(schedule.Next(), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2));
    }

    [Fact]
    public void A_forged_bug_check_latch_does_not_silence_the_guard()
    {
        using var kernel = new TestGuard();

        typeof(KernelBugCheck).GetField("_raised", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!
            .SetValue(kernel.Guard.BugCheck, 1);

        BugCheckReport report = kernel.Sink.Wait();
        Assert.Equal(0x109UL, report.Code);
        Assert.Equal((ulong)GuardRegionType.GuardState, report.Parameter4);
        Assert.Contains("bug check latch", report.Dump.Region!.Name, StringComparison.Ordinal);
    }

    [Fact]
    public void Callback_added_outside_the_api_raises_0x109_with_the_callout_type_and_names_its_owner()
    {
        using var kernel = new TestGuard();
        var table = new CallbackTable();
        kernel.Guard.Protect(table);

        table.Add(static pid => GC.KeepAlive(pid));

        BugCheckReport report = kernel.Sink.Wait();
        Assert.Equal(0x109UL, report.Code);
        Assert.Equal((ulong)GuardRegionType.NotificationCallout, report.Parameter4);
        Assert.NotEqual(report.Parameter2, report.Parameter3);
        Assert.Equal(typeof(GuardTests).Assembly.GetName().Name, report.Dump.Culprit?.Assembly);
    }

    [Fact]
    public void Service_table_slot_rewrite_raises_0x109_type_0xA_and_names_the_owner_of_the_new_pointer()
    {
        using var kernel = new TestGuard();
        nint* table = (nint*)NativeMemory.AllocZeroed(32 * 8);
        try
        {
            kernel.Guard.Protect(new NativeMemoryRegion("system service table", GuardRegionType.SystemServiceTable, (nint)table, 32 * 8, holdsPointers: true));
            Dictionary<string, long> sweeps = kernel.SweepsNow();

            table[3] = typeof(GuardTests).GetMethod(nameof(Service_table_slot_rewrite_raises_0x109_type_0xA_and_names_the_owner_of_the_new_pointer))!.MethodHandle.GetFunctionPointer();

            BugCheckReport report = kernel.Sink.Wait();
            Assert.Equal((ulong)GuardRegionType.SystemServiceTable, report.Parameter4);
            Assert.Equal((ulong)table, report.Parameter1);
            Assert.Contains(report.Dump.Changes, c => c.Key == "slot 3");
            Assert.Equal(typeof(GuardTests).Assembly.GetName().Name, report.Dump.Culprit?.Assembly);
            TestGuard.AssertDetectedWithinBound(sweeps, report);
        }
        finally
        {
            kernel.Guard.WaitForThreads();
            NativeMemory.Free(table);
        }
    }

    [Fact]
    public void Process_hidden_from_one_view_raises_0x109_with_the_process_list_type()
    {
        using var kernel = new TestGuard();
        var table = new MutableListView("process table", [100, 101]);
        var pidfds = new MutableListView("pidfd set", [100, 101]);
        kernel.Guard.Protect(new CrossViewRegion("active process list", GuardRegionType.ProcessList, 1, table, pidfds));
        kernel.WaitRounds(2);

        pidfds.Remove(101);

        BugCheckReport report = kernel.Sink.Wait();
        Assert.Equal((ulong)GuardRegionType.ProcessList, report.Parameter4);
        Assert.Contains(report.Dump.Changes, c => c.Key == "member 101");
    }

    [Fact]
    public void Context_stuck_in_a_sweep_is_reported_by_the_watchdog()
    {
        using var stuck = new BlockingStructure();
        using var kernel = new TestGuard();
        kernel.Guard.Protect(stuck);

        stuck.Block();

        BugCheckReport report = kernel.Sink.Wait();
        stuck.Release();
        Assert.Equal((ulong)GuardRegionType.GuardHeartbeat, report.Parameter4);
        Assert.Equal("guard watchdog", report.Dump.DetectedBy);
    }

    [Fact]
    public void Change_from_a_foreign_authority_is_refused()
    {
        using var kernel = new TestGuard();
        using var other = new TestGuard();
        int region = kernel.Guard.Protect(new CallbackTable());

        var refused = Assert.Throws<UnauthorizedAccessException>(() => kernel.Guard.BeginChange(other.Authority, region));
        Assert.StartsWith("Only the kernel that started the guard", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Shutdown_from_a_foreign_authority_is_refused()
    {
        using var kernel = new TestGuard();
        using var other = new TestGuard();

        Assert.Throws<UnauthorizedAccessException>(() => kernel.Guard.Shutdown(other.Authority));
    }

    [Theory]
    [InlineData(1, 10, 20)]
    [InlineData(3, 0, 20)]
    [InlineData(3, 10, 60_000)]
    [InlineData(3, 30, 20)]
    public void Schedule_outside_the_documented_bounds_is_refused(int contexts, int minMs, int maxMs)
    {
        var options = new GuardOptions
        {
            ContextCount = contexts,
            MinInterval = TimeSpan.FromMilliseconds(minMs),
            MaxInterval = TimeSpan.FromMilliseconds(maxMs),
        };
        var bugCheck = new KernelBugCheck(new BugCheckOptions { DumpDirectory = Path.GetTempPath(), Sink = new RecordingSink() });

        Assert.Throws<ArgumentOutOfRangeException>(() => KernelGuard.Start(options, bugCheck, out _));
    }

    [Fact]
    public void Compat_flavor_boots_without_a_guard()
    {
        var bugCheck = new KernelBugCheck(new BugCheckOptions { DumpDirectory = Path.GetTempPath(), Sink = new RecordingSink() });

        KernelGuard? guard = KernelGuard.StartForFlavor(KernelFlavor.Compat, TestGuard.FastSchedule, bugCheck, out GuardAuthority? authority);

        Assert.Null(guard);
        Assert.Null(authority);
    }
}

/// <summary>A list view whose members a test can change (the kernel's process table or pidfd set).</summary>
internal sealed class MutableListView(string name, long[] ids) : IGuardedListView
{
    private long[] _ids = ids;

    public string Name => name;

    internal void Remove(long id) => Volatile.Write(ref _ids, Array.FindAll(Volatile.Read(ref _ids), x => x != id));

    public int CopyMemberIds(Span<long> destination)
    {
        long[] ids = Volatile.Read(ref _ids);
        if (destination.Length < ids.Length)
        {
            return -ids.Length;
        }

        ids.CopyTo(destination);
        return ids.Length;
    }
}

/// <summary>A kernel structure whose digest blocks once told to, standing in for a check that hangs on a lock.</summary>
internal sealed class BlockingStructure : IGuardedStructure, IDisposable
{
    private readonly ManualResetEventSlim _released = new(true);

    public string Name => "blocking structure";

    public GuardRegionType RegionType => GuardRegionType.GenericData;

    internal void Block() => _released.Reset();

    internal void Release() => _released.Set();

    public void AppendDigest(ref GuardHasher hasher)
    {
        _released.Wait();
        hasher.Add(1UL);
    }

    public void DescribeEntries(ICollection<GuardedEntry> entries)
    {
    }

    public void Dispose()
    {
        _released.Set();
        _released.Dispose();
    }
}
