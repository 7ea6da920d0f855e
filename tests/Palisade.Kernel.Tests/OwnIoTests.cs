using Palisade.Api;

namespace Palisade.Kernel.Tests;

/// <summary>
/// A driver's own I/O through IFilterManager, on real files: rename, delete and set-information go only to the
/// filters below the calling filter (or to every filter, on no filter's behalf) and are then performed by the
/// kernel; OpenFile reports the identity it opened.
/// </summary>
public sealed class OwnIoTests : IDisposable
{
    private readonly TestKernel _k = new();
    private readonly List<string> _seen = [];
    private readonly string _file;
    private CallbackCookie _middle;

    public OwnIoTests()
    {
        _file = Path.Combine(_k.Home, "sample.txt");
        File.WriteAllText(_file, "palisade");
    }

    public void Dispose() => _k.Dispose();

    // Three filters that record the own I/O they see; "bottom" refuses whatever names a path ending in ".keep".
    private IDriverContext StartFilters()
    {
        return _k.Start(c =>
        {
            c.Files.RegisterFilter(Recorder("top", "300"), out _);
            c.Files.RegisterFilter(Recorder("middle", "200"), out _middle);
            return c.Files.RegisterFilter(Recorder("bottom", "100"), out _);
        });

        FilterRegistration Recorder(string name, string altitude) => new()
        {
            Name = name,
            Altitude = altitude,
            Operations =
            [
                new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = (ref FileOperation op) => Record(name, ref op) },
                new FileOperationRegistration { Kind = FileOperationKind.Rename, PreOperation = (ref FileOperation op) => Record(name, ref op) },
                new FileOperationRegistration { Kind = FileOperationKind.Delete, PreOperation = (ref FileOperation op) => Record(name, ref op) },
                new FileOperationRegistration { Kind = FileOperationKind.SetInformation, PreOperation = (ref FileOperation op) => Record(name, ref op) },
            ],
        };
    }

    private PreOperationStatus Record(string filter, ref FileOperation op)
    {
        _seen.Add($"{filter} {op.Kind} {Path.GetFileName(op.Path)}{(op.NewPath is null ? "" : " -> " + Path.GetFileName(op.NewPath))}");
        if (filter == "bottom" && op.Path.EndsWith(".keep", StringComparison.Ordinal))
        {
            op.Status = Status.AccessDenied;
            return PreOperationStatus.Complete;
        }

        return PreOperationStatus.SuccessNoCallback;
    }

    [Fact]
    public void Own_rename_goes_to_the_filters_below_and_moves_the_file()
    {
        IDriverContext c = StartFilters();
        string target = Path.Combine(_k.Home, "moved.txt");

        Assert.Equal(Status.Success, c.Files.RenameFile(_middle, _file, target));

        Assert.Equal(["bottom Rename sample.txt -> moved.txt"], _seen);
        Assert.False(File.Exists(_file));
        Assert.Equal("palisade", File.ReadAllText(target));
    }

    [Fact]
    public void Own_rename_never_replaces_an_existing_file()
    {
        IDriverContext c = StartFilters();
        string target = Path.Combine(_k.Home, "existing.txt");
        File.WriteAllText(target, "older");

        Assert.Equal(Status.ObjectNameCollision, c.Files.RenameFile(_middle, _file, target));

        Assert.Equal("older", File.ReadAllText(target));
        Assert.Equal("palisade", File.ReadAllText(_file));
    }

    [Fact]
    public void A_lower_filter_refuses_an_own_delete_and_the_file_stays()
    {
        IDriverContext c = StartFilters();
        string kept = Path.Combine(_k.Home, "file.keep");
        File.WriteAllText(kept, "kept");

        Assert.Equal(Status.AccessDenied, c.Files.DeleteFile(_middle, kept));

        Assert.True(File.Exists(kept));
        Assert.Equal(["bottom Delete file.keep"], _seen);
    }

    [Fact]
    public void Own_delete_removes_a_file_and_refuses_a_directory()
    {
        IDriverContext c = StartFilters();
        string directory = Directory.CreateDirectory(Path.Combine(_k.Home, "folder")).FullName;

        Assert.Equal(Status.Success, c.Files.DeleteFile(_middle, _file));
        Assert.Equal(Status.AccessDenied, c.Files.DeleteFile(_middle, directory));
        Assert.Equal(Status.ObjectNameNotFound, c.Files.DeleteFile(_middle, _file));

        Assert.False(File.Exists(_file));
        Assert.True(Directory.Exists(directory));
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Own_set_information_changes_the_mode_and_the_size()
    {
        IDriverContext c = StartFilters();

        Assert.Equal(Status.Success, c.Files.SetFileInformation(_middle, _file, FileInformationClass.Mode, 0x180));
        Assert.Equal(Status.Success, c.Files.SetFileInformation(_middle, _file, FileInformationClass.Size, 4));

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_file));
        Assert.Equal("pali", File.ReadAllText(_file));
        Assert.Equal(["bottom SetInformation sample.txt", "bottom SetInformation sample.txt"], _seen);
    }

    [Theory]
    [InlineData((int)FileInformationClass.None, 0L)]
    [InlineData((int)FileInformationClass.Mode, 0x1000L)]
    [InlineData((int)FileInformationClass.Mode, -1L)]
    [InlineData((int)FileInformationClass.Size, -1L)]
    public void Own_set_information_with_an_out_of_range_value_is_InvalidParameter_and_reaches_no_filter(int informationClass, long value)
    {
        IDriverContext c = StartFilters();

        Assert.Equal(Status.InvalidParameter, c.Files.SetFileInformation(_middle, _file, (FileInformationClass)informationClass, value));

        Assert.Empty(_seen);
    }

    [Fact]
    public void Own_io_with_relative_paths_is_InvalidParameter()
    {
        IDriverContext c = StartFilters();

        Assert.Equal(Status.InvalidParameter, c.Files.RenameFile(_middle, "sample.txt", "/tmp/x"));
        Assert.Equal(Status.InvalidParameter, c.Files.RenameFile(_middle, _file, "x"));
        Assert.Equal(Status.InvalidParameter, c.Files.DeleteFile(_middle, ""));
        Assert.Empty(_seen);
    }

    [Fact]
    public void OpenFile_reports_the_identity_of_the_file_it_opened()
    {
        IDriverContext c = StartFilters();
        Assert.Equal(0, Palisade.Interop.Libc.FileIdentityOf(_file, out FileIdentity expected, out _));

        Assert.Equal(Status.Success, c.Files.OpenFile(_middle, _file, FileAccess.Read, out Stream? stream, out FileIdentity opened));

        stream!.Dispose();
        Assert.Equal(expected, opened);
    }

    [Fact]
    public void Own_io_on_no_filters_behalf_is_seen_by_every_filter()
    {
        IDriverContext c = StartFilters();

        Assert.Equal(Status.Success, c.Files.OpenFile(default, _file, FileAccess.Read, out Stream? stream));
        stream!.Dispose();

        Assert.Equal(["top Create sample.txt", "middle Create sample.txt", "bottom Create sample.txt"], _seen);
    }

    [Fact]
    public void Own_io_through_another_drivers_filter_is_InvalidHandle()
    {
        StartFilters();
        IDriverContext other = _k.Start(_ => Status.Success);

        Assert.Equal(Status.InvalidHandle, other.Files.DeleteFile(_middle, _file));
        Assert.Equal(Status.InvalidHandle, other.Files.RenameFile(_middle, _file, _file + ".2"));

        Assert.True(File.Exists(_file));
        Assert.Empty(_seen);
    }

    [Fact]
    public void Own_io_after_the_driver_unloaded_is_InvalidDeviceState()
    {
        IDriverContext c = _k.Start(_ => Status.Success, out Palisade.Kernel.Drivers.DriverObject record);
        Assert.Equal(Status.Success, _k.Kernel.StopDriver(record));

        Assert.Equal(Status.InvalidDeviceState, c.Files.OpenFile(default, _file, FileAccess.Read, out _));
        Assert.Equal(Status.InvalidDeviceState, c.Files.DeleteFile(default, _file));

        Assert.True(File.Exists(_file));
    }
}
