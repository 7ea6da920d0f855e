using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using Palisade.Api;
using Palisade.Kernel.Io;

namespace Palisade.Kernel.Tests;

/// <summary>
/// The check of whether a file is open for writing (a read lease taken and released at once) on real files, with real
/// writers in other processes, one of them arriving while the lease is held.
/// </summary>
public sealed class LeaseProbeTests : IDisposable
{
    private const int F_UNLCK = 2;
    private readonly string _folder = Directory.CreateTempSubdirectory("palisade-lease-").FullName;
    private readonly string _file;

    public LeaseProbeTests()
    {
        _file = Path.Combine(_folder, "f");
        File.WriteAllText(_file, "content\n");
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private WriterCheck Check(Action<int>? whileHeld = null)
    {
        using SafeFileHandle h = File.OpenHandle(_file, FileMode.Open, FileAccess.Read);
        return LeaseProbe.Check((int)h.DangerousGetHandle(), whileHeld);
    }

    [LeaseFact]
    public void A_file_no_one_has_open_for_writing_has_no_writer()
    {
        Assert.Equal(WriterCheck.NoWriter, Check());
    }

    [LeaseFact("/bin/sh")]
    public void A_writer_in_another_process_is_seen_until_it_closes()
    {
        using (Process writer = Start("exec 3>> \"$1\"; echo ready; read line"))
        {
            Assert.Equal("ready", writer.StandardOutput.ReadLine());

            Assert.Equal(WriterCheck.Writer, Check());

            writer.StandardInput.WriteLine();
            Assert.True(writer.WaitForExit(10_000), "the writer ended");
        }

        Assert.Equal(WriterCheck.NoWriter, Check());
    }

    [LeaseFact("/bin/sh")]
    public void A_writer_that_opens_while_the_lease_is_held_waits_for_the_release_and_signals_nothing_fatal()
    {
        Process? writer = null;
        bool broke = false;

        WriterCheck found = Check(probe =>
        {
            // The writer's open breaks the lease: Linux signals the holder (this process) and holds the open until the
            // release. The default signal, SIGIO, would end this process here.
            writer = Start("echo appended >> \"$1\"");
            var deadline = Stopwatch.StartNew();
            while (!broke && deadline.Elapsed < TimeSpan.FromSeconds(10))
            {
                broke = LeaseProbe.LeaseOf(probe) == F_UNLCK;
                Thread.Yield();
            }
        });

        using (writer)
        {
            Assert.True(broke, "the writer's open broke the lease while it was held");
            Assert.Equal(WriterCheck.NoWriter, found);
            Assert.True(writer!.WaitForExit(10_000), "the writer's open went on after the release");
            Assert.Equal(0, writer.ExitCode);
        }

        Assert.Equal("content\nappended\n", File.ReadAllText(_file));
    }

    [RootFact]
    public void Leases_disabled_on_the_machine_are_reported_as_such()
    {
        const string Setting = "/proc/sys/fs/leases-enable";
        string before = File.ReadAllText(Setting);
        WriterCheck found;
        try
        {
            File.WriteAllText(Setting, "0");
            found = Check();
        }
        finally
        {
            File.WriteAllText(Setting, before);
        }

        Assert.Equal(WriterCheck.LeasesDisabled, found);
    }

    [LeaseFact]
    public void The_query_states_a_file_and_counts_no_guest_writers_without_guests()
    {
        using SafeFileHandle h = File.OpenHandle(_file, FileMode.Open, FileAccess.Read);
        using var k = new TestKernel();

        Assert.Equal(Status.Success, FileStateQuery.Of(h, k.Kernel.ProcessTable, out FileState state));
        Assert.Equal((FileObjectType.Regular, 8L, WriterCheck.NoWriter, 0), (state.Type, state.Size, state.Writers, state.GuestWriteDescriptions));
    }

    [Fact]
    public void The_query_without_a_descriptor_is_refused()
    {
        using var k = new TestKernel();

        Assert.Equal(Status.AccessDenied, FileStateQuery.Of(-1, k.Kernel.ProcessTable, out FileState state));
        Assert.Equal(default, state);
    }

    private Process Start(string script)
    {
        var start = new ProcessStartInfo("/bin/sh", ["-c", script, "writer", _file])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        return Process.Start(start)!;
    }
}
