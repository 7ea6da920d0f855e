using System.Collections.Concurrent;
using System.Diagnostics;
using Palisade.Api;
using Palisade.Host.Linux.Mediation;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>
/// <see cref="IFilterManager.QueryFileState"/> for real shells opening and writing real files under the supervisor with
/// the kernel mediator: a filter queries the state of the file named <c>f</c> (or the folder <c>d</c>) in each post-create
/// and each cleanup of it.
/// </summary>
public sealed class FileStateTests : IDisposable
{
    private readonly TestKernel _k = new();
    private readonly Guest _guest = new();
    private readonly ConcurrentQueue<Seen> _seen = new();
    private readonly IDriverContext _context;
    private CallbackCookie _cookie;

    public FileStateTests()
    {
        _context = _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "file-state",
            Altitude = "320000",
            Operations =
            [
                new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = PreCreate, PostOperation = (ref FileOperation op) => Query(c, ref op) },
                new FileOperationRegistration { Kind = FileOperationKind.Cleanup, PreOperation = (ref FileOperation op) => Query(c, ref op) },
            ],
        }, out _cookie));
    }

    /// <summary>What one callback saw: the operation, the query's status and state, and the statuses of the queries it
    /// made with a wrong file and with no filter's cookie.</summary>
    private sealed record Seen(FileOperationKind Kind, FileAccessRights Access, FileChangeStamp OperationStamp, long Offset, Status Status, FileState State,
        Status OtherFile, Status NoFilter, FileIdentity File);

    public void Dispose()
    {
        _k.Dispose();
        _guest.Dispose();
    }

    private PreOperationStatus PreCreate(ref FileOperation op) =>
        IsWatched(op.Path) ? PreOperationStatus.SuccessWithCallback : PreOperationStatus.SuccessNoCallback;

    private bool IsWatched(string path) =>
        path == _guest.PathOf("f") || path == _guest.PathOf("d");

    private PreOperationStatus Query(IDriverContext c, ref FileOperation op)
    {
        if (IsWatched(op.Path) && op.Status.IsSuccess)
        {
            Status s = c.Files.QueryFileState(_cookie, op.File, out FileState state);
            Status other = c.Files.QueryFileState(_cookie, new FileIdentity(op.File.Device, op.File.Inode + 1), out _);
            Status noFilter = c.Files.QueryFileState(default, op.File, out _);
            _seen.Enqueue(new Seen(op.Kind, op.Access, op.ChangeStamp, op.Offset, s, state, other, noFilter, op.File));
        }

        return PreOperationStatus.SuccessNoCallback;
    }

    private void Shell(string script) => Assert.Equal(0, _guest.Shell(new KernelMediator(_k.Host), script));

    /// <summary>The states the post-creates of read-only opens of <c>f</c> saw, in order.</summary>
    private Seen[] Reads() =>
        [.. _seen.Where(s => s.Kind == FileOperationKind.Create && (s.Access & FileAccessRights.Write) == 0)];

    [FileStateFact("/bin/sh", "cat")]
    public void The_state_is_the_files_size_times_identity_and_type()
    {
        File.WriteAllText(_guest.PathOf("f"), "twelve bytes");
        var info = new FileInfo(_guest.PathOf("f"));

        Shell("cat f > /dev/null");

        Seen read = Assert.Single(Reads());
        Assert.Equal(Status.Success, read.Status);
        Assert.Equal(read.File, read.State.File);
        Assert.Equal(FileObjectType.Regular, read.State.Type);
        Assert.Equal(12, read.State.Size);
        Assert.Equal((info.LastWriteTimeUtc - DateTime.UnixEpoch).Ticks, read.State.ModificationTime / 100);
        Assert.True(read.State.ChangeTime >= read.State.ModificationTime, "the change time is never before the modification time");
    }

    [FileStateFact("/bin/sh", "cat")]
    public void A_file_no_one_has_open_for_writing_is_reported_so()
    {
        File.WriteAllText(_guest.PathOf("f"), "content");

        Shell("cat f > /dev/null");

        Seen read = Assert.Single(Reads());
        Assert.Equal(WriterCheck.NoWriter, read.State.Writers);
        Assert.False(read.State.OpenForWriting);
        Assert.Equal(0, read.State.GuestWriteDescriptions);
    }

    [FileStateFact("/bin/sh", "cat")]
    public void A_writer_in_a_process_outside_Palisade_makes_the_file_open_for_writing_until_it_closes()
    {
        File.WriteAllText(_guest.PathOf("f"), "content");
        using (Process writer = StartOutsideWriter(_guest.PathOf("f")))
        {
            Shell("cat f > /dev/null");

            writer.StandardInput.WriteLine();
            Assert.True(writer.WaitForExit(10_000), "the outside writer ended");
        }

        Shell("cat f > /dev/null");

        Seen[] reads = Reads();
        Assert.Equal([(WriterCheck.Writer, 0), (WriterCheck.NoWriter, 0)], reads.Select(r => (r.State.Writers, r.State.GuestWriteDescriptions)));
    }

    [FileStateFact("/bin/sh", "cat")]
    public void A_guest_write_description_is_counted_until_it_is_released()
    {
        Shell("exec 3>> f; cat f > /dev/null; exec 3>&-; cat f > /dev/null");

        Seen[] reads = Reads();
        Assert.Equal([(WriterCheck.Writer, 1), (WriterCheck.NoWriter, 0)], reads.Select(r => (r.State.Writers, r.State.GuestWriteDescriptions)));
    }

    [FileStateFact("/bin/sh", "cat")]
    public void Guest_write_descriptions_are_counted_once_each_however_many_descriptors_share_them()
    {
        // Two descriptions (3 and 4); 5 is a dup of 3, and cat, a child, holds copies of all three.
        Shell("exec 3>> f; exec 4>> f; exec 5>&3; cat f > /dev/null");

        Assert.Equal(2, Assert.Single(Reads()).State.GuestWriteDescriptions);
    }

    [FileStateFact("/bin/sh")]
    public void The_description_being_opened_for_writing_is_open_but_not_yet_the_guests()
    {
        Shell("echo hi > f");

        Seen create = Assert.Single(_seen, s => s.Kind == FileOperationKind.Create);
        Assert.Equal((WriterCheck.Writer, 0), (create.State.Writers, create.State.GuestWriteDescriptions));
    }

    [FileStateFact("/bin/sh")]
    public void The_cleanup_reports_the_file_as_the_release_left_it_and_no_byte_count()
    {
        Shell("echo hi > f");

        Seen cleanup = Assert.Single(_seen, s => s.Kind == FileOperationKind.Cleanup);
        Assert.Equal(Status.Success, cleanup.Status);
        Assert.Equal((3L, WriterCheck.NoWriter, 0), (cleanup.State.Size, cleanup.State.Writers, cleanup.State.GuestWriteDescriptions));
        Assert.Equal(cleanup.State.ChangeStamp, cleanup.OperationStamp);
        Assert.Equal(0, cleanup.Offset);
    }

    [FileStateFact("/bin/sh", "ls")]
    public void A_folder_is_stated_but_not_checked_for_writers()
    {
        Directory.CreateDirectory(_guest.PathOf("d"));

        Shell("ls d > /dev/null");

        Seen read = Assert.Single(Reads());
        Assert.Equal((Status.Success, FileObjectType.Directory, WriterCheck.NotRegularFile), (read.Status, read.State.Type, read.State.Writers));
    }

    [FileStateFact("/bin/sh", "cat")]
    public void A_query_for_another_file_than_the_operations_is_refused()
    {
        File.WriteAllText(_guest.PathOf("f"), "content");

        Shell("cat f > /dev/null");

        Assert.Equal(Status.InvalidDeviceState, Assert.Single(Reads()).OtherFile);
    }

    [FileStateFact("/bin/sh", "cat")]
    public void A_query_without_the_filters_cookie_is_refused()
    {
        File.WriteAllText(_guest.PathOf("f"), "content");

        Shell("cat f > /dev/null");

        Assert.Equal(Status.InvalidHandle, Assert.Single(Reads()).NoFilter);
    }

    [FileStateFact("/bin/sh")]
    public void A_query_outside_a_callback_is_refused()
    {
        Shell("echo hi > f");
        FileIdentity file = Assert.Single(_seen, s => s.Kind == FileOperationKind.Cleanup).File;

        Assert.Equal(Status.InvalidDeviceState, _context.Files.QueryFileState(_cookie, file, out FileState state));
        Assert.Equal(default, state);
    }

    /// <summary>A shell outside the supervisor that holds <paramref name="path"/> open for appending until a line comes on its input.</summary>
    private static Process StartOutsideWriter(string path)
    {
        var start = new ProcessStartInfo("/bin/sh", ["-c", "exec 3>> \"$1\"; echo ready; read line", "writer", path])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        Process writer = Process.Start(start)!;
        Assert.Equal("ready", writer.StandardOutput.ReadLine());
        return writer;
    }
}
