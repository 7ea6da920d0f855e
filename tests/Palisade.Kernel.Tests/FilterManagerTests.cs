using Palisade.Api;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Io;

namespace Palisade.Kernel.Tests;

public sealed class FilterManagerTests : IDisposable
{
    private readonly TestKernel _k = new(deadline: TimeSpan.FromMilliseconds(200));
    private readonly string _file;

    public FilterManagerTests()
    {
        _file = Path.Combine(_k.Home, "target.txt");
        File.WriteAllText(_file, "palisade");
    }

    public void Dispose() => _k.Dispose();

    private static FilterRegistration Filter(string name, string altitude, FilePreCallback? pre, FilePostCallback? post = null,
        FileOperationKind kind = FileOperationKind.Create) =>
        new() { Name = name, Altitude = altitude, Operations = [new FileOperationRegistration { Kind = kind, PreOperation = pre, PostOperation = post }] };

    private static IFilterManager Files(IDriverContext c) => c.Files;

    [Fact]
    public void Pre_callbacks_run_from_the_highest_altitude_down_and_post_callbacks_back_up()
    {
        var order = new List<string>();
        foreach (string alt in new[] { "320000", "385000", "140000" })
        {
            _k.Start(c => c.Files.RegisterFilter(Filter("f" + alt, alt,
                (ref FileOperation _) => { order.Add("pre " + alt); return PreOperationStatus.SuccessWithCallback; },
                (ref FileOperation _) => order.Add("post " + alt)), out _));
        }

        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Equal(["pre 385000", "pre 320000", "pre 140000", "post 140000", "post 320000", "post 385000"], order);
    }

    [Fact]
    public void A_callback_that_sets_File_changes_only_its_own_copy_of_the_operation()
    {
        var bogus = new FileIdentity(9, 9);
        var seen = new List<FileIdentity>();
        _k.Start(c => c.Files.RegisterFilter(Filter("liar", "320000", (ref FileOperation op) =>
        {
            op.File = bogus;
            return PreOperationStatus.SuccessWithCallback;
        }, (ref FileOperation op) => seen.Add(op.File)), out _));
        _k.Start(c => c.Files.RegisterFilter(Filter("lower", "100000", (ref FileOperation op) =>
        {
            seen.Add(op.File);
            return PreOperationStatus.SuccessWithCallback;
        }, (ref FileOperation op) => seen.Add(op.File)), out _));

        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Equal(3, seen.Count);
        Assert.DoesNotContain(bogus, seen);
        Assert.False(seen[1].IsNone, "the post callback did not see the file opened");
        Assert.Equal(seen[1], seen[2]);
    }

    [Fact]
    public void Pre_complete_with_AccessDenied_fails_the_open_and_lower_filters_never_see_it()
    {
        bool lowerCalled = false;
        _k.Start(c => c.Files.RegisterFilter(Filter("deny", "320000", (ref FileOperation op) =>
        {
            op.Status = Status.AccessDenied;
            return PreOperationStatus.Complete;
        }), out _));
        _k.Start(c => c.Files.RegisterFilter(Filter("lower", "100000", (ref FileOperation _) =>
        {
            lowerCalled = true;
            return PreOperationStatus.SuccessNoCallback;
        }), out _));

        Assert.Equal(Status.AccessDenied, _k.Open(_file));
        Assert.False(lowerCalled);
    }

    [Fact]
    public void Success_without_callback_skips_the_post_callback()
    {
        bool post = false;
        _k.Start(c => c.Files.RegisterFilter(Filter("f", "320000", (ref FileOperation _) => PreOperationStatus.SuccessNoCallback,
            (ref FileOperation _) => post = true), out _));
        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.False(post);
    }

    [Fact]
    public void Post_create_sees_the_identity_of_the_opened_file_and_can_cancel_the_open()
    {
        FileIdentity seen = default;
        _k.Start(c => c.Files.RegisterFilter(Filter("f", "320000", (ref FileOperation _) => PreOperationStatus.SuccessWithCallback,
            (ref FileOperation op) =>
            {
                seen = op.File;
                op.Status = Status.Cancelled;
            }), out _));

        var fs = new KernelFileSystem();
        var frame = new ServiceFrame
        {
            File = new FileOperation { Kind = FileOperationKind.Create, Path = _file, Access = FileAccessRights.Read },
            FilePerformer = fs,
        };
        Assert.Equal(Status.Cancelled, _k.Kernel.SystemCall(SystemService.CreateFile, ref frame));
        Assert.False(seen.IsNone);
        Assert.Null(fs.Opened);
    }

    [Fact]
    public void An_upper_post_create_cannot_revert_a_lower_filters_cancel_and_the_attempt_is_a_fault()
    {
        var faults = new List<string>();
        _k.Kernel.Events.DriverFault += (d, r) => { lock (faults) { faults.Add(d + ": " + r); } };
        _k.Start(c => c.Files.RegisterFilter(Filter("antivirus", "320000", (ref FileOperation _) => PreOperationStatus.SuccessWithCallback,
            (ref FileOperation op) => op.Status = Status.AccessDenied), out _), name: "antivirus");
        _k.Start(c => c.Files.RegisterFilter(Filter("undo", "385000", (ref FileOperation _) => PreOperationStatus.SuccessWithCallback,
            (ref FileOperation op) => op.Status = Status.Success), out _), name: "undo");

        Assert.Equal(Status.AccessDenied, _k.Open(_file));
        Assert.Contains(faults, f => f.StartsWith("undo:", StringComparison.Ordinal) && f.Contains("cannot undo", StringComparison.Ordinal));
    }

    [Fact]
    public void An_upper_post_callback_cannot_turn_a_failed_operation_into_success()
    {
        _k.Start(c => c.Files.RegisterFilter(Filter("undo", "385000", (ref FileOperation _) => PreOperationStatus.SuccessWithCallback,
            (ref FileOperation op) => op.Status = Status.Success), out _), name: "undo");

        Assert.Equal(Status.ObjectNameNotFound, _k.Open(_file + ".missing"));
    }

    [Fact]
    public void An_upper_post_create_may_cancel_an_open_a_lower_filter_allowed()
    {
        _k.Start(c => c.Files.RegisterFilter(Filter("lower", "140000", (ref FileOperation _) => PreOperationStatus.SuccessWithCallback,
            (ref FileOperation _) => { }), out _));
        _k.Start(c => c.Files.RegisterFilter(Filter("upper", "385000", (ref FileOperation _) => PreOperationStatus.SuccessWithCallback,
            (ref FileOperation op) => op.Status = Status.Cancelled), out _));

        Assert.Equal(Status.Cancelled, _k.Open(_file));
    }

    [Fact]
    public void A_pre_create_rewriting_the_operation_is_seen_by_no_filter_below_and_not_performed()
    {
        string other = Path.Combine(_k.Home, "other.txt");
        File.WriteAllText(other, "elsewhere");
        (string? Path, FileAccessRights Access) seenBelow = default;
        string? read = null;
        CallbackCookie scan = default;
        IDriverContext c = _k.Start(c => c.Files.RegisterFilter(Filter("scan", "320000", (ref FileOperation op) =>
        {
            seenBelow = (op.Path, op.Access);
            return PreOperationStatus.SuccessWithCallback;
        }, (ref FileOperation op) =>
        {
            byte[] buffer = new byte[64];
            if (c.Files.ReadFile(scan, op.File, 0, buffer, out int n) == Status.Success)
            {
                read = System.Text.Encoding.ASCII.GetString(buffer, 0, n);
            }
        }), out scan));
        _k.Start(c => c.Files.RegisterFilter(Filter("rewrite", "385000", (ref FileOperation op) =>
        {
            op = op with { Path = other, Access = FileAccessRights.None };
            return PreOperationStatus.SuccessNoCallback;
        }), out _));

        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Equal((_file, FileAccessRights.Read), seenBelow);
        Assert.Equal("palisade", read);
    }

    [Fact]
    public void A_post_create_callback_reads_the_opened_file_and_nowhere_else()
    {
        string? content = null;
        CallbackCookie cookie = default;
        IDriverContext c = _k.Start(c => c.Files.RegisterFilter(Filter("scan", "320000", (ref FileOperation _) => PreOperationStatus.SuccessWithCallback,
            (ref FileOperation op) =>
            {
                byte[] buffer = new byte[64];
                if (c.Files.ReadFile(cookie, op.File, 0, buffer, out int read) == Status.Success)
                {
                    content = System.Text.Encoding.ASCII.GetString(buffer, 0, read);
                }
            }), out cookie));
        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Equal("palisade", content);
        Assert.Equal(Status.InvalidDeviceState, c.Files.ReadFile(cookie, new FileIdentity(1, 1), 0, new byte[4], out _));
    }

    [Fact]
    public void Own_io_from_inside_a_callback_does_not_disturb_the_outer_operation()
    {
        bool outerPost = false;
        string? outerRead = null;
        CallbackCookie a = default, b = default;
        IDriverContext c = _k.Start(c =>
        {
            c.Files.RegisterFilter(Filter("a", "300", (ref FileOperation _) => PreOperationStatus.SuccessWithCallback, (ref FileOperation op) =>
            {
                outerPost = true;
                byte[] buffer = new byte[16];
                if (c.Files.ReadFile(a, op.File, 0, buffer, out int n) == Status.Success)
                {
                    outerRead = System.Text.Encoding.ASCII.GetString(buffer, 0, n);
                }
            }), out a);
            return c.Files.RegisterFilter(Filter("b", "200", (ref FileOperation op) =>
            {
                if (op.RequesterProcessId != 0 && c.Files.OpenFile(b, op.Path, FileAccess.Read, out Stream? s) == Status.Success)
                {
                    s!.Dispose();
                }

                return PreOperationStatus.SuccessNoCallback;
            }), out b);
        });
        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.True(outerPost);
        Assert.Equal("palisade", outerRead);
    }

    [Fact]
    public void Completion_context_reaches_the_filters_own_post_callback()
    {
        object? got = null;
        _k.Start(c => c.Files.RegisterFilter(Filter("f", "320000", (ref FileOperation op) =>
        {
            op.CompletionContext = "mine";
            return PreOperationStatus.SuccessWithCallback;
        }, (ref FileOperation op) => got = op.CompletionContext), out _));
        _k.Open(_file);
        Assert.Equal("mine", got);
    }

    [Fact]
    public void Same_altitude_twice_returns_AltitudeCollision()
    {
        IDriverContext c = _k.Start(c => c.Files.RegisterFilter(Filter("a", "320000", (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out _));
        Assert.Equal(Status.AltitudeCollision, c.Files.RegisterFilter(Filter("b", "320000", (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out CallbackCookie cookie));
        Assert.Equal(default, cookie);
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("-5")]
    [InlineData("0")]
    [InlineData("1234567890123")]
    [InlineData("1.2.3")]
    public void Malformed_altitude_returns_InvalidAltitude(string altitude)
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        Assert.Equal(Status.InvalidAltitude, c.Files.RegisterFilter(Filter("a", altitude, (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out _));
    }

    [Fact]
    public void Bad_registrations_return_InvalidParameter_and_register_nothing()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        Assert.Equal(Status.InvalidParameter, c.Files.RegisterFilter(null!, out _));
        Assert.Equal(Status.InvalidParameter, c.Files.RegisterFilter(Filter("", "1", (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out _));
        Assert.Equal(Status.InvalidParameter, c.Files.RegisterFilter(Filter("x", "1", null, null), out _));
        Assert.Equal(Status.InvalidParameter, c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "dup",
            Altitude = "1",
            Operations =
            [
                new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessNoCallback },
                new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessNoCallback },
            ],
        }, out _));
        Assert.Equal(0, _k.Kernel.Files.Filters.Count);
    }

    [Fact]
    public void The_sixty_fifth_filter_gets_TooManyRegistrations()
    {
        IDriverContext c = _k.Start(_ => Status.Success);
        for (int i = 1; i <= 64; i++)
        {
            Assert.Equal(Status.Success, c.Files.RegisterFilter(Filter("f" + i, i.ToString(System.Globalization.CultureInfo.InvariantCulture), (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out _));
        }

        Assert.Equal(Status.TooManyRegistrations, c.Files.RegisterFilter(Filter("f65", "65", (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out _));
    }

    [Fact]
    public void Unregistered_filter_is_not_called_again()
    {
        int calls = 0;
        CallbackCookie cookie = default;
        IDriverContext c = _k.Start(c => c.Files.RegisterFilter(Filter("f", "320000", (ref FileOperation _) =>
        {
            calls++;
            return PreOperationStatus.SuccessNoCallback;
        }), out cookie));
        _k.Open(_file);
        Assert.Equal(Status.Success, c.Files.UnregisterFilter(cookie));
        _k.Open(_file);
        Assert.Equal(1, calls);
        Assert.Equal(Status.InvalidHandle, c.Files.UnregisterFilter(cookie));
    }

    [Fact]
    public void File_contexts_belong_to_their_filter_and_are_found_again()
    {
        CallbackCookie a = default, b = default;
        IDriverContext c = _k.Start(c =>
        {
            c.Files.RegisterFilter(Filter("a", "2", (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out a);
            return c.Files.RegisterFilter(Filter("b", "1", (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out b);
        });
        var id = new FileIdentity(1, 42);
        Assert.Equal(Status.Success, c.Files.SetFileContext(a, id, "clean"));
        Assert.Equal(Status.Success, c.Files.GetFileContext(a, id, out object? found));
        Assert.Equal("clean", found);
        Assert.Equal(Status.NotFound, c.Files.GetFileContext(b, id, out _));
        Assert.Equal(Status.Success, c.Files.DeleteFileContext(a, id));
        Assert.Equal(Status.NotFound, c.Files.GetFileContext(a, id, out _));
        Assert.Equal(Status.InvalidParameter, c.Files.SetFileContext(a, default, "x"));
    }

    [Fact]
    public void A_driver_io_only_filter_is_not_called_for_a_guests_open_and_is_for_a_drivers_own_io_below_the_issuer()
    {
        var seen = new List<string>();
        CallbackCookie issuer = default;
        IDriverContext c = _k.Start(c =>
        {
            c.Files.RegisterFilter(Filter("issuer", "300", (ref FileOperation _) => { seen.Add("issuer"); return PreOperationStatus.SuccessNoCallback; }), out issuer);
            return c.Files.RegisterFilter(new FilterRegistration
            {
                Name = "own-io",
                Altitude = "200",
                Operations =
                [
                    new FileOperationRegistration
                    {
                        Kind = FileOperationKind.Create,
                        PreOperation = (ref FileOperation _) => { seen.Add("own-io pre"); return PreOperationStatus.SuccessWithCallback; },
                        PostOperation = (ref FileOperation _) => seen.Add("own-io post"),
                        Flags = FileOperationFlags.DriverIoOnly,
                    },
                ],
            }, out _);
        });

        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Equal(["issuer"], seen);

        seen.Clear();
        Assert.Equal(Status.Success, c.Files.OpenFile(issuer, _file, FileAccess.Read, out Stream? s));
        s!.Dispose();
        Assert.Equal(["own-io pre", "own-io post"], seen);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(-1)]
    public void An_operation_flag_the_api_does_not_define_is_refused(int flags)
    {
        Status s = Status.Success;
        _k.Start(c =>
        {
            s = c.Files.RegisterFilter(new FilterRegistration
            {
                Name = "bad-flags",
                Altitude = "200",
                Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessNoCallback, Flags = (FileOperationFlags)flags }],
            }, out _);
            return Status.Success;
        });

        Assert.Equal(Status.InvalidParameter, s);
    }

    [Fact]
    public void A_filters_own_io_is_seen_only_by_filters_below_it()
    {
        var seen = new List<string>();
        CallbackCookie middle = default;
        IDriverContext c = _k.Start(c =>
        {
            c.Files.RegisterFilter(Filter("top", "300", (ref FileOperation _) => { seen.Add("top"); return PreOperationStatus.SuccessNoCallback; }), out _);
            c.Files.RegisterFilter(Filter("middle", "200", (ref FileOperation _) => { seen.Add("middle"); return PreOperationStatus.SuccessNoCallback; }), out middle);
            return c.Files.RegisterFilter(Filter("bottom", "100", (ref FileOperation _) => { seen.Add("bottom"); return PreOperationStatus.SuccessNoCallback; }), out _);
        });

        Assert.Equal(Status.Success, c.Files.OpenFile(middle, _file, FileAccess.Read, out Stream? s));
        using (var reader = new StreamReader(s!))
        {
            Assert.Equal("palisade", reader.ReadToEnd());
        }

        Assert.Equal(["bottom"], seen);
        Assert.Equal(Status.InvalidParameter, c.Files.OpenFile(middle, "relative.txt", FileAccess.Read, out _));
        Assert.Equal(Status.ObjectNameNotFound, c.Files.OpenFile(middle, _file + ".missing", FileAccess.Read, out _));
    }

    [Fact]
    public void A_throwing_pre_callback_is_contained_reported_and_the_open_proceeds()
    {
        var faults = new List<string>();
        _k.Kernel.Events.DriverFault += (d, r) => { lock (faults) { faults.Add(d + ": " + r); } };
        _k.Start(c => c.Files.RegisterFilter(Filter("boom", "320000", (ref FileOperation _) => throw new InvalidOperationException("bug in driver")), out _), name: "faulty");
        Assert.Equal(Status.Success, _k.Open(_file));
        Assert.Contains(faults, f => f.StartsWith("faulty:", StringComparison.Ordinal) && f.Contains("bug in driver", StringComparison.Ordinal));
    }

    [Fact]
    public void A_hanging_callback_is_reported_at_its_deadline_and_its_late_deny_gives_way_to_the_timeout_verdict()
    {
        using var release = new ManualResetEventSlim(false);
        using var faulted = new ManualResetEventSlim(false);
        _k.Kernel.Events.DriverFault += (d, r) => { if (d == "hang") { faulted.Set(); } };
        _k.Start(c => c.Files.RegisterFilter(Filter("hang", "320000", (ref FileOperation op) =>
        {
            release.Wait();
            op.Status = Status.AccessDenied;
            return PreOperationStatus.Complete;
        }), out _), name: "hang");

        Status result = default;
        var t = new Thread(() => result = _k.Open(_file));
        t.Start();
        Assert.True(faulted.Wait(TimeSpan.FromSeconds(30)), "the monitor reported the overrun while the callback still ran");
        release.Set();
        t.Join();
        Assert.Equal(Status.Success, result);
        Assert.False(_k.Kernel.Files.Filters.Snapshot[0].Disabled, "no policy asked to disable it");
    }

    [Fact]
    public void Unloading_a_driver_removes_every_filter_it_left_registered()
    {
        IDriverContext c = _k.Start(c => c.Files.RegisterFilter(Filter("left", "320000", (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out _), out var record);
        Assert.Equal(1, _k.Kernel.Files.Filters.Count);
        Assert.Equal(Status.Success, _k.Kernel.StopDriver(record));
        Assert.Equal(0, _k.Kernel.Files.Filters.Count);
        Assert.Equal(Status.InvalidDeviceState, c.Files.RegisterFilter(Filter("late", "1", (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out _));
    }
}
