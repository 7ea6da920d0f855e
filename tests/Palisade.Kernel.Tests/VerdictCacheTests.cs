using Palisade.Api;
using Palisade.Kernel.Io;

namespace Palisade.Kernel.Tests;

/// <summary>The kernel's file-verdict cache (IFilterManager.SetFileVerdict / GetFileVerdict) on real files.</summary>
public sealed class VerdictCacheTests : IDisposable
{
    private readonly TestKernel _k = new(deadline: TimeSpan.FromSeconds(5));
    private readonly string _file;
    private IDriverContext? _c;
    private CallbackCookie _filter;
    private FileIdentity _seenFile;
    private FileChangeStamp _seenStamp;

    public VerdictCacheTests()
    {
        _file = Path.Combine(_k.Home, "scanned.bin");
        File.WriteAllText(_file, "clean content");
    }

    public void Dispose() => _k.Dispose();

    /// <summary>A filter whose post-create records the identity and stamp the kernel gives it for each open.</summary>
    private IDriverContext Watch(string name = "watch", string altitude = "320000")
    {
        CallbackCookie cookie = default;
        IDriverContext c = _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = name,
            Altitude = altitude,
            Operations = [new FileOperationRegistration
            {
                Kind = FileOperationKind.Create,
                PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessWithCallback,
                PostOperation = (ref FileOperation op) =>
                {
                    _seenFile = op.File;
                    _seenStamp = op.ChangeStamp;
                },
            }],
        }, out cookie));
        _c ??= c;
        _filter = cookie;
        return c;
    }

    /// <summary>Opens the file through the filters and caches "clean" under the stamp the post-create saw.</summary>
    private void OpenAndCache()
    {
        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.False(_seenStamp.IsNone);
        Assert.Equal(Status.Success, _c!.Files.SetFileVerdict(_filter, _seenFile, _seenStamp, "clean"));
    }

    /// <summary>Opens the file again and asks the cache under the stamp the post-create sees now.</summary>
    private Status OpenAndAsk(out object? verdict)
    {
        Assert.Equal(Status.Success, _k.Open(_file));
        return _c!.Files.GetFileVerdict(_filter, _seenFile, _seenStamp, out verdict);
    }

    [Fact]
    public void A_verdict_is_found_while_the_file_is_unchanged()
    {
        Watch();
        OpenAndCache();
        Assert.Equal(Status.Success, OpenAndAsk(out object? verdict));
        Assert.Equal("clean", verdict);
    }

    [Fact]
    public void An_append_from_outside_the_filter_stack_retires_the_verdict()
    {
        Watch();
        OpenAndCache();
        File.AppendAllText(_file, "X5O!P%@AP");
        Assert.Equal(Status.NotFound, OpenAndAsk(out object? verdict));
        Assert.Null(verdict);
    }

    [Fact]
    public void A_same_size_rewrite_right_after_the_stamp_retires_the_verdict()
    {
        Watch();
        OpenAndCache();
        using (var w = new FileStream(_file, FileMode.Open, FileAccess.Write))
        {
            w.Write("CLEAN CONTENT"u8);
        }

        Assert.Equal(new FileInfo(_file).Length, _seenStamp.Size);
        Assert.Equal(Status.NotFound, OpenAndAsk(out _));
    }

    [Fact]
    public void A_truncate_and_rewrite_retires_the_verdict()
    {
        Watch();
        OpenAndCache();
        File.WriteAllText(_file, "clean content");
        Assert.Equal(Status.NotFound, OpenAndAsk(out _));
    }

    [Fact]
    public void A_stale_verdict_is_dropped_and_not_found_again_under_the_old_stamp()
    {
        Watch();
        OpenAndCache();
        FileChangeStamp old = _seenStamp;
        File.AppendAllText(_file, "more");
        Assert.Equal(Status.NotFound, OpenAndAsk(out _));
        Assert.Equal(Status.NotFound, _c!.Files.GetFileVerdict(_filter, _seenFile, old, out _));
    }

    [Fact]
    public void Another_filter_does_not_see_the_verdict_and_another_driver_cannot_name_it()
    {
        CallbackCookie a = default, b = default;
        IDriverContext c = _k.Start(c =>
        {
            c.Files.RegisterFilter(new FilterRegistration { Name = "a", Altitude = "2", Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessNoCallback }] }, out a);
            return c.Files.RegisterFilter(new FilterRegistration { Name = "b", Altitude = "1", Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessNoCallback }] }, out b);
        });
        IDriverContext other = _k.Start(_ => Status.Success);
        var file = new FileIdentity(3, 4);
        var stamp = new FileChangeStamp(10, 20, 30, 0);
        Assert.Equal(Status.Success, c.Files.SetFileVerdict(a, file, stamp, "clean"));
        Assert.Equal(Status.NotFound, c.Files.GetFileVerdict(b, file, stamp, out _));
        Assert.Equal(Status.InvalidHandle, other.Files.GetFileVerdict(a, file, stamp, out _));
        Assert.Equal(Status.Success, c.Files.GetFileVerdict(a, file, stamp, out object? verdict));
        Assert.Equal("clean", verdict);
    }

    [Fact]
    public void Verdicts_go_with_their_filter()
    {
        Watch();
        OpenAndCache();
        Assert.Equal(Status.Success, _c!.Files.UnregisterFilter(_filter));
        Assert.Equal(Status.InvalidHandle, _c.Files.GetFileVerdict(_filter, _seenFile, _seenStamp, out _));
    }

    [Fact]
    public void Arguments_are_validated()
    {
        Watch();
        var file = new FileIdentity(1, 2);
        var stamp = new FileChangeStamp(10, 20, 30, 0);
        Assert.Equal(Status.InvalidParameter, _c!.Files.SetFileVerdict(_filter, default, stamp, "v"));
        Assert.Equal(Status.InvalidParameter, _c.Files.SetFileVerdict(_filter, file, default, "v"));
        Assert.Equal(Status.InvalidParameter, _c.Files.SetFileVerdict(_filter, file, stamp, null!));
        Assert.Equal(Status.InvalidHandle, _c.Files.SetFileVerdict(default, file, stamp, "v"));
        Assert.Equal(Status.InvalidParameter, _c.Files.GetFileVerdict(_filter, default, stamp, out _));
        Assert.Equal(Status.InvalidHandle, _c.Files.GetFileVerdict(default, file, stamp, out _));
        Assert.Equal(Status.Success, _c.Files.SetFileVerdict(_filter, file, stamp, "v"));
        Assert.Equal(Status.NotFound, _c.Files.GetFileVerdict(_filter, file, default, out _));
    }

    [Fact]
    public void The_cache_holds_at_most_its_capacity()
    {
        var cache = new VerdictCache(FilterRegistration.DefaultVerdictCacheCapacity);
        var stamp = new FileChangeStamp(1, 1, 1, 0);
        for (ulong i = 1; i <= (ulong)cache.Capacity * 3; i++)
        {
            cache.Set(new FileIdentity(7, i), stamp, "v");
        }

        Assert.Equal(FilterRegistration.DefaultVerdictCacheCapacity, cache.Capacity);
        Assert.True(cache.Count <= cache.Capacity);
        Assert.Equal("v", cache.Get(new FileIdentity(7, (ulong)cache.Capacity * 3), stamp));
    }

    [Fact]
    public void A_capacity_is_rounded_up_to_whole_slots()
    {
        Assert.Equal(8, new VerdictCache(5).Capacity);
        Assert.Equal(100_000, new VerdictCache(100_000).Capacity);
    }

    [Fact]
    public void A_filter_registered_with_a_larger_capacity_keeps_that_many_more_verdicts()
    {
        var stamp = new FileChangeStamp(1, 1, 1, 0);
        IDriverContext c = _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "large",
            Altitude = "320000",
            VerdictCacheCapacity = 131_072,
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessNoCallback }],
        }, out _filter));
        for (ulong i = 1; i <= 100_000; i++)
        {
            Assert.Equal(Status.Success, c.Files.SetFileVerdict(_filter, new FileIdentity(3, i), stamp, "clean"));
        }

        int kept = 0;
        for (ulong i = 1; i <= 100_000; i++)
        {
            kept += c.Files.GetFileVerdict(_filter, new FileIdentity(3, i), stamp, out _) == Status.Success ? 1 : 0;
        }

        // Consecutive inodes, as a file system hands them out, spread over the slots without a collision; the default
        // capacity would have kept 4,096.
        Assert.Equal(100_000, kept);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(FilterRegistration.MaxVerdictCacheCapacity + 1)]
    public void A_verdict_cache_capacity_out_of_range_is_refused(int capacity)
    {
        Status status = Status.Success;
        _k.Start(c =>
        {
            status = c.Files.RegisterFilter(new FilterRegistration
            {
                Name = "bad",
                Altitude = "320000",
                VerdictCacheCapacity = capacity,
                Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessNoCallback }],
            }, out _);
            return Status.Success;
        });
        Assert.Equal(Status.InvalidParameter, status);
    }

    [Fact]
    public void Filters_cannot_reserve_more_verdicts_together_than_the_kernels_budget()
    {
        // An attack on the capacity: each filter asks for the most, so that the kernel would reserve 256 MiB per filter.
        var statuses = new List<Status>();
        _k.Start(c =>
        {
            for (int i = 0; i < 3; i++)
            {
                statuses.Add(c.Files.RegisterFilter(new FilterRegistration
                {
                    Name = "greedy" + i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Altitude = (320000 + i).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    VerdictCacheCapacity = i == 0 ? FilterRegistration.MaxVerdictCacheCapacity - FilterRegistration.DefaultVerdictCacheCapacity : FilterRegistration.MaxVerdictCacheCapacity,
                    Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessNoCallback }],
                }, out _));
            }

            statuses.Add(c.Files.RegisterFilter(new FilterRegistration
            {
                Name = "modest",
                Altitude = "320100",
                Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessNoCallback }],
            }, out _));
            return Status.Success;
        });

        // The first fits with room for one default cache; the next two would pass the budget; the default one fits.
        Assert.Equal([Status.Success, Status.InsufficientResources, Status.InsufficientResources, Status.Success], statuses);
    }

    [Fact]
    public void A_full_slot_evicts_its_least_recently_used_verdict()
    {
        // Five identities that share one slot of four ways.
        var cache = new VerdictCache(FilterRegistration.DefaultVerdictCacheCapacity);
        var same = new List<FileIdentity>();
        int slot = VerdictCache.SlotOf(new FileIdentity(9, 1), cache.Slots);
        for (ulong i = 1; same.Count < VerdictCache.Ways + 1; i++)
        {
            var id = new FileIdentity(9, i);
            if (VerdictCache.SlotOf(id, cache.Slots) == slot)
            {
                same.Add(id);
            }
        }

        var stamp = new FileChangeStamp(1, 1, 1, 0);
        for (int i = 0; i < VerdictCache.Ways; i++)
        {
            cache.Set(same[i], stamp, i);
        }

        Assert.Equal(0, cache.Get(same[0], stamp)); // the first is now the most recently used
        cache.Set(same[VerdictCache.Ways], stamp, "new");
        Assert.Null(cache.Get(same[1], stamp));
        Assert.Equal(0, cache.Get(same[0], stamp));
        Assert.Equal("new", cache.Get(same[VerdictCache.Ways], stamp));
    }
}
