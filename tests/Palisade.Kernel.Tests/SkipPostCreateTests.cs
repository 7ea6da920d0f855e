using Palisade.Api;
using Palisade.Kernel.Events;
using Palisade.Kernel.Io;

namespace Palisade.Kernel.Tests;

/// <summary>
/// Verdicts cached with <see cref="FileVerdictFlags.SkipPostCreate"/>: the kernel answers an open of the unchanged file that
/// asks for no write without calling the filter's post-create (IFilterManager.SetFileVerdict with flags, ClearFileVerdicts).
/// </summary>
public sealed class SkipPostCreateTests : IDisposable
{
    private static readonly object s_clean = new();
    private readonly TestKernel _k = new(deadline: TimeSpan.FromSeconds(5));
    private readonly string _file;
    private IDriverContext? _c;
    private CallbackCookie _filter;
    private int _posts;
    private int _pres;
    private FileIdentity _seenFile;
    private FileChangeStamp _seenStamp;

    public SkipPostCreateTests()
    {
        _file = Path.Combine(_k.Home, "judged.bin");
        File.WriteAllText(_file, "clean content");
    }

    public void Dispose() => _k.Dispose();

    /// <summary>A filter whose post-create counts its calls and records the identity and stamp of each open; with
    /// <paramref name="pre"/>, a pre-create that asks for the post (and counts its own calls).</summary>
    private IDriverContext Watch(bool pre = false, string name = "watch", string altitude = "320000")
    {
        CallbackCookie cookie = default;
        IDriverContext c = _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = name,
            Altitude = altitude,
            Operations = [new FileOperationRegistration
            {
                Kind = FileOperationKind.Create,
                PreOperation = pre ? (ref FileOperation _) =>
                {
                    _pres++;
                    return PreOperationStatus.SuccessWithCallback;
                }
                : null,
                PostOperation = (ref FileOperation op) =>
                {
                    _posts++;
                    _seenFile = op.File;
                    _seenStamp = op.ChangeStamp;
                },
            }],
        }, out cookie));
        _c ??= c;
        _filter = cookie;
        return c;
    }

    /// <summary>Opens the file through the filters (the post-create sees it) and caches a verdict under the stamp it saw.</summary>
    private void OpenAndCache(FileVerdictFlags flags = FileVerdictFlags.SkipPostCreate)
    {
        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Equal(1, _posts);
        Assert.False(_seenStamp.IsNone);
        Assert.Equal(Status.Success, _c!.Files.SetFileVerdict(_filter, _seenFile, _seenStamp, s_clean, flags));
    }

    /// <summary>
    /// A create of the file, already opened for real by the kernel's own file system (so it carries the file's identity and
    /// the stamp the kernel took), that the test sends through the filters as many times as it likes with the access and
    /// disposition it chooses.
    /// </summary>
    private sealed class OpenedFile : IFileSystemPerformer, IDisposable
    {
        private readonly KernelFileSystem _fs = new();

        public OpenedFile(string path)
        {
            Operation = new FileOperation { Kind = FileOperationKind.Create, Path = path, Access = FileAccessRights.Read, RequesterProcessId = 100 };
            Assert.Equal(Status.Success, _fs.Perform(ref Operation));
        }

        public FileOperation Operation;

        public int Cancels { get; private set; }

        public Status Perform(ref FileOperation operation) => Status.Success;

        public void CancelCreate(ref FileOperation operation) => Cancels++;

        public Status ReadOpened(long offset, Span<byte> buffer, out int bytesRead) => _fs.ReadOpened(offset, buffer, out bytesRead);

        public Status QueryOpened(Processes.ProcessTable guests, out FileState state) => _fs.QueryOpened(guests, out state);

        public void Dispose() => _fs.Opened?.Dispose();
    }

    /// <summary>Sends <paramref name="op"/> through the filters as a guest's create, performed by <paramref name="file"/>.</summary>
    private Status Dispatch(OpenedFile file, FileOperation op, OperationRecord? record = null) =>
        _k.Kernel.Files.Dispatch(ref op, file, decimal.MaxValue, record);

    [Theory]
    [InlineData(FileAccessRights.Read)]
    [InlineData(FileAccessRights.Execute)]
    [InlineData(FileAccessRights.None)]
    public void A_skip_verdict_spares_the_post_create_of_an_open_of_the_unchanged_file_that_asks_no_write(FileAccessRights access)
    {
        Watch();
        OpenAndCache();
        Assert.Equal(Status.Success, _k.Open(_file, access));
        Assert.Equal(1, _posts);
    }

    [Theory]
    [InlineData(FileAccessRights.Write, CreateDisposition.Open)]
    [InlineData(FileAccessRights.Read | FileAccessRights.Write, CreateDisposition.OpenIf)]
    [InlineData(FileAccessRights.Append, CreateDisposition.Open)]
    [InlineData(FileAccessRights.Read, CreateDisposition.Overwrite)]
    [InlineData(FileAccessRights.Read, CreateDisposition.OverwriteIf)]
    public void An_open_that_asks_for_write_still_reaches_the_post_create(FileAccessRights access, CreateDisposition disposition)
    {
        Watch();
        using var file = new OpenedFile(_file);
        Assert.Equal(Status.Success, _c!.Files.SetFileVerdict(_filter, file.Operation.File, file.Operation.ChangeStamp, s_clean, FileVerdictFlags.SkipPostCreate));
        Assert.Equal(Status.Success, Dispatch(file, file.Operation));
        Assert.Equal(0, _posts);

        Assert.Equal(Status.Success, Dispatch(file, file.Operation with { Access = access, Disposition = disposition }));
        Assert.Equal(1, _posts);
    }

    [Fact]
    public void A_file_changed_after_its_verdict_reaches_the_post_create_again()
    {
        Watch();
        OpenAndCache();
        File.AppendAllText(_file, "X5O!P%@AP");
        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Equal(2, _posts);
    }

    [Fact]
    public void A_verdict_without_the_flag_spares_no_post_create()
    {
        Watch();
        OpenAndCache(FileVerdictFlags.None);
        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Equal(2, _posts);
    }

    [Fact]
    public void The_pre_create_is_still_called_when_the_post_create_is_spared()
    {
        Watch(pre: true);
        OpenAndCache();
        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Equal(2, _pres);
        Assert.Equal(1, _posts);
    }

    [Fact]
    public void A_skip_verdict_of_one_filter_does_not_spare_another_filters_post_create()
    {
        int otherPosts = 0;
        _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "other",
            Altitude = "310000",
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PostOperation = (ref FileOperation _) => otherPosts++ }],
        }, out _));
        Watch();
        OpenAndCache();
        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Equal(1, _posts);
        Assert.Equal(2, otherPosts);
    }

    [Fact]
    public void Clearing_the_filters_verdicts_brings_its_post_create_back()
    {
        Watch();
        OpenAndCache();
        Assert.Equal(Status.Success, _c!.Files.ClearFileVerdicts(_filter));
        Assert.Equal(Status.NotFound, _c.Files.GetFileVerdict(_filter, _seenFile, _seenStamp, out _));
        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Equal(2, _posts);
    }

    [Fact]
    public void Clearing_drops_only_the_verdicts_of_the_filter_named()
    {
        CallbackCookie a = default, b = default;
        IDriverContext c = _k.Start(c =>
        {
            c.Files.RegisterFilter(new FilterRegistration { Name = "a", Altitude = "2", Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessNoCallback }] }, out a);
            return c.Files.RegisterFilter(new FilterRegistration { Name = "b", Altitude = "1", Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessNoCallback }] }, out b);
        });
        IDriverContext stranger = _k.Start(_ => Status.Success);
        var file = new FileIdentity(3, 4);
        var stamp = new FileChangeStamp(10, 20, 30, 0);
        Assert.Equal(Status.Success, c.Files.SetFileVerdict(a, file, stamp, s_clean, FileVerdictFlags.SkipPostCreate));
        Assert.Equal(Status.Success, c.Files.SetFileVerdict(b, file, stamp, s_clean, FileVerdictFlags.SkipPostCreate));
        Assert.Equal(Status.InvalidHandle, stranger.Files.ClearFileVerdicts(a));
        Assert.Equal(Status.Success, c.Files.ClearFileVerdicts(a));
        Assert.Equal(Status.NotFound, c.Files.GetFileVerdict(a, file, stamp, out _));
        Assert.Equal(Status.Success, c.Files.GetFileVerdict(b, file, stamp, out _));
        Assert.Equal(Status.InvalidHandle, c.Files.ClearFileVerdicts(default));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(-1)]
    public void Flags_the_api_does_not_define_are_refused(int flags)
    {
        Watch();
        var file = new FileIdentity(1, 2);
        var stamp = new FileChangeStamp(10, 20, 30, 0);
        Assert.Equal(Status.InvalidParameter, _c!.Files.SetFileVerdict(_filter, file, stamp, s_clean, (FileVerdictFlags)flags));
        Assert.Equal(Status.NotFound, _c.Files.GetFileVerdict(_filter, file, stamp, out _));
    }

    [Fact]
    public void The_other_arguments_of_a_verdict_with_flags_are_validated()
    {
        Watch();
        var file = new FileIdentity(1, 2);
        var stamp = new FileChangeStamp(10, 20, 30, 0);
        Assert.Equal(Status.InvalidParameter, _c!.Files.SetFileVerdict(_filter, default, stamp, s_clean, FileVerdictFlags.SkipPostCreate));
        Assert.Equal(Status.InvalidParameter, _c.Files.SetFileVerdict(_filter, file, default, s_clean, FileVerdictFlags.SkipPostCreate));
        Assert.Equal(Status.InvalidParameter, _c.Files.SetFileVerdict(_filter, file, stamp, null!, FileVerdictFlags.SkipPostCreate));
        Assert.Equal(Status.InvalidHandle, _c.Files.SetFileVerdict(default, file, stamp, s_clean, FileVerdictFlags.SkipPostCreate));
    }

    [Fact]
    public void A_pre_create_that_hands_a_completion_context_still_gets_its_post_create()
    {
        object? received = null;
        object context = new();
        IDriverContext c = _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "contexts",
            Altitude = "320000",
            Operations = [new FileOperationRegistration
            {
                Kind = FileOperationKind.Create,
                PreOperation = (ref FileOperation op) =>
                {
                    op.CompletionContext = context;
                    return PreOperationStatus.SuccessWithCallback;
                },
                PostOperation = (ref FileOperation op) => received = op.CompletionContext,
            }],
        }, out _filter));
        using var file = new OpenedFile(_file);
        Assert.Equal(Status.Success, c.Files.SetFileVerdict(_filter, file.Operation.File, file.Operation.ChangeStamp, s_clean, FileVerdictFlags.SkipPostCreate));
        Assert.Equal(Status.Success, Dispatch(file, file.Operation));
        Assert.Same(context, received);
    }

    [Fact]
    public void An_open_a_filter_below_cancelled_still_reaches_the_post_create()
    {
        Watch();
        _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "canceller",
            Altitude = "310000",
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PostOperation = (ref FileOperation op) => op.Status = Status.AccessDenied }],
        }, out _));
        using var file = new OpenedFile(_file);
        Assert.Equal(Status.Success, _c!.Files.SetFileVerdict(_filter, file.Operation.File, file.Operation.ChangeStamp, s_clean, FileVerdictFlags.SkipPostCreate));
        Assert.Equal(Status.AccessDenied, Dispatch(file, file.Operation));
        Assert.Equal(1, _posts);
        Assert.Equal(1, file.Cancels);
    }

    [Fact]
    public void An_open_decided_on_a_cached_verdict_is_recorded_as_cached()
    {
        Watch();
        using var file = new OpenedFile(_file);
        Assert.Equal(Status.Success, _c!.Files.SetFileVerdict(_filter, file.Operation.File, file.Operation.ChangeStamp, s_clean, FileVerdictFlags.SkipPostCreate));
        var record = new OperationRecord();
        record.Begin(100, "open");
        Assert.Equal(Status.Success, Dispatch(file, file.Operation, record));
        Assert.Equal(1, record.VerdictCount);
        Assert.Equal("cached", record.Verdicts[0]);
    }

    [Fact]
    public void Sparing_a_post_create_allocates_nothing()
    {
        Watch();
        using var file = new OpenedFile(_file);
        Assert.Equal(Status.Success, _c!.Files.SetFileVerdict(_filter, file.Operation.File, file.Operation.ChangeStamp, s_clean, FileVerdictFlags.SkipPostCreate));
        FilterManager files = _k.Kernel.Files;
        FileOperation template = file.Operation;
        Status last = Status.Unsuccessful;
        void Open()
        {
            FileOperation op = template;
            last = files.Dispatch(ref op, file, decimal.MaxValue, null);
        }

        for (int i = 0; i < 16; i++)
        {
            Open();
        }

        Assert.Equal(0, Allocations.SteadyState(Open, iterations: 1000));
        Assert.Equal(Status.Success, last);
        Assert.Equal(0, _posts);
    }

    [Fact]
    public void The_cache_counts_its_skipping_verdicts_through_replacement_staleness_and_clearing()
    {
        var cache = new VerdictCache(FilterRegistration.DefaultVerdictCacheCapacity);
        var file = new FileIdentity(5, 6);
        var stamp = new FileChangeStamp(1, 1, 1, 0);
        Assert.False(cache.HasSkips);

        cache.Set(file, stamp, s_clean, FileVerdictFlags.SkipPostCreate);
        Assert.True(cache.HasSkips);
        Assert.True(cache.Skips(file, stamp));
        cache.Set(file, stamp, s_clean);
        Assert.False(cache.HasSkips);
        Assert.False(cache.Skips(file, stamp));

        cache.Set(file, stamp, s_clean, FileVerdictFlags.SkipPostCreate);
        Assert.False(cache.Skips(file, new FileChangeStamp(2, 1, 1, 0)));
        Assert.False(cache.HasSkips);
        Assert.Null(cache.Get(file, stamp));

        cache.Set(file, stamp, s_clean, FileVerdictFlags.SkipPostCreate);
        cache.Clear();
        Assert.False(cache.HasSkips);
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void An_evicted_skipping_verdict_leaves_the_count()
    {
        var cache = new VerdictCache(VerdictCache.Ways);
        var stamp = new FileChangeStamp(1, 1, 1, 0);
        cache.Set(new FileIdentity(9, 1), stamp, s_clean, FileVerdictFlags.SkipPostCreate);
        for (ulong i = 2; i <= VerdictCache.Ways + 1; i++)
        {
            cache.Set(new FileIdentity(9, i), stamp, s_clean);
        }

        Assert.False(cache.Skips(new FileIdentity(9, 1), stamp));
        Assert.False(cache.HasSkips);
    }
}
