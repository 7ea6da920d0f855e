using System.Text;
using Microsoft.Win32.SafeHandles;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>The file family of the kernel mediator, against a real kernel and real files, with no guest running.</summary>
public sealed class FileMediatorTests : IDisposable
{
    private readonly TestKernel _k = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("palisade-filemediator-").FullName;
    private readonly Requester _requester = new(Environment.ProcessId, Environment.CurrentManagedThreadId);

    public void Dispose()
    {
        _k.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static FilterRegistration Filter(FileOperationKind kind, FilePreCallback? pre, FilePostCallback? post = null) =>
        new() { Name = "test", Altitude = "320000", Operations = [new FileOperationRegistration { Kind = kind, PreOperation = pre, PostOperation = post }] };

    private static OpenCall Open(string path, int flags = Libc.O_RDONLY) => new() { Path = Encoding.UTF8.GetBytes(path), Flags = flags };

    [Fact]
    public void Pre_open_denied_by_a_minifilter_fails_with_EACCES()
    {
        _k.Start(c => c.Files.RegisterFilter(Filter(FileOperationKind.Create, (ref FileOperation op) =>
        {
            op.Status = Status.AccessDenied;
            return PreOperationStatus.Complete;
        }), out _));

        Assert.Equal(Errno.EACCES, new FileMediator(_k.Host).PreOpen(_requester, Open("/etc/hostname")));
    }

    [Fact]
    public void Pre_open_that_no_filter_wants_to_see_again_is_allowed_without_a_post_decision()
    {
        _k.Start(c => c.Files.RegisterFilter(Filter(FileOperationKind.Create, (ref FileOperation _) => PreOperationStatus.SuccessNoCallback), out _));

        Assert.Equal(ISyscallMediator.AllowWithoutPost, new FileMediator(_k.Host).PreOpen(_requester, Open("/etc/hostname")));
    }

    [Fact]
    public void Pre_open_passes_the_decoded_access_and_disposition_to_the_filter()
    {
        FileOperation seen = default;
        _k.Start(c => c.Files.RegisterFilter(Filter(FileOperationKind.Create, (ref FileOperation op) =>
        {
            seen = op;
            return PreOperationStatus.SuccessNoCallback;
        }), out _));

        new FileMediator(_k.Host).PreOpen(_requester, Open("/tmp/new", Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL));

        Assert.Equal(("/tmp/new", FileAccessRights.Write, CreateDisposition.Create, _requester.ProcessId), (seen.Path, seen.Access, seen.Disposition, seen.RequesterProcessId));
    }

    [Fact]
    public void Post_open_reads_the_file_the_supervisor_opened_and_its_cancel_fails_with_EACCES()
    {
        string path = Path.Combine(_dir, "eicar.txt");
        File.WriteAllText(path, "MALWARE here");
        string? read = null;
        _k.Start(c =>
        {
            CallbackCookie cookie = default;
            Status s = c.Files.RegisterFilter(Filter(FileOperationKind.Create, (ref FileOperation _) => PreOperationStatus.SuccessWithCallback, (ref FileOperation op) =>
            {
                byte[] buffer = new byte[7];
                if (c.Files.ReadFile(cookie, op.File, 0, buffer, out int n) == Status.Success)
                {
                    read = Encoding.ASCII.GetString(buffer, 0, n);
                    op.Status = Status.Cancelled;
                }
            }), out cookie);
            return s;
        });
        var mediator = new FileMediator(_k.Host);
        using SafeFileHandle handle = File.OpenHandle(path);
        Libc.FileIdentityOf(path, out FileIdentity identity, out _);

        Assert.Equal(0, mediator.PreOpen(_requester, Open(path)));
        int errno = mediator.PostOpen(_requester, new OpenedFile(identity, 0x8000, (int)handle.DangerousGetHandle(), new byte[64], new byte[256]));

        Assert.Equal((Errno.EACCES, "MALWARE"), (errno, read));
    }

    [Fact]
    public void Path_operation_denied_by_a_minifilter_fails_with_its_errno()
    {
        _k.Start(c => c.Files.RegisterFilter(Filter(FileOperationKind.Delete, (ref FileOperation op) =>
        {
            op.Status = Status.AccessDenied;
            return PreOperationStatus.Complete;
        }), out _));

        var call = new PathOperationCall { Kind = PathOperationKind.Unlink, Path = "/tmp/x"u8 };
        Assert.Equal(Errno.EACCES, new FileMediator(_k.Host).PathOperation(_requester, call));
    }

    [Fact]
    public void Post_callback_of_a_path_operation_sees_the_status_of_the_errno_Linux_gave()
    {
        Status seen = Status.Success;
        _k.Start(c => c.Files.RegisterFilter(Filter(FileOperationKind.Rename, (ref FileOperation _) => PreOperationStatus.SuccessWithCallback,
            (ref FileOperation op) => seen = op.Status), out _));
        var mediator = new FileMediator(_k.Host);
        var call = new PathOperationCall { Kind = PathOperationKind.Rename, Path = "/tmp/a"u8, NewPath = "/tmp/b"u8 };

        Assert.Equal(0, mediator.PathOperation(_requester, call));
        mediator.PathOperationCompleted(_requester, Errno.ENOENT);

        Assert.Equal(Status.ObjectNameNotFound, seen);
    }

    [Fact]
    public void Closing_a_file_opened_for_writing_notifies_cleanup_with_its_path()
    {
        string path = Path.Combine(_dir, "written.txt");
        string? cleaned = null;
        _k.Start(c => c.Files.RegisterFilter(Filter(FileOperationKind.Cleanup, (ref FileOperation op) =>
        {
            cleaned = op.Path;
            return PreOperationStatus.SuccessNoCallback;
        }), out _));
        using SafeFileHandle handle = File.OpenHandle(path, FileMode.Create, FileAccess.Write);

        new FileMediator(_k.Host).Close(_requester, (int)handle.DangerousGetHandle());

        Assert.Equal(path, cleaned);
    }

    [Fact]
    public void Closing_a_file_opened_for_reading_notifies_nothing()
    {
        bool cleaned = false;
        _k.Start(c => c.Files.RegisterFilter(Filter(FileOperationKind.Cleanup, (ref FileOperation _) =>
        {
            cleaned = true;
            return PreOperationStatus.SuccessNoCallback;
        }), out _));
        using SafeFileHandle handle = File.OpenHandle("/etc/hostname");

        new FileMediator(_k.Host).Close(_requester, (int)handle.DangerousGetHandle());

        Assert.False(cleaned);
    }
}
