using System.Globalization;

namespace Palisade.EndToEnd.Tests;

/// <summary>No resource of the kernel that a guest can multiply: threads held for a guest go when the guest goes.</summary>
public sealed class ResourceTests : IDisposable
{
    private readonly PalisadeRun _p = new();
    private readonly string _scratch;

    public ResourceTests()
    {
        _scratch = Directory.CreateTempSubdirectory("palisade-e2e-scratch-").FullName;
        File.SetUnixFileMode(_scratch, (UnixFileMode)0x1FF | UnixFileMode.StickyBit);
    }

    public void Dispose()
    {
        _p.Dispose();
        Directory.Delete(_scratch, recursive: true);
    }

    [GuestFact("bash")]
    public void Relative_calls_in_a_folder_deeper_than_PATH_MAX_behave_as_without_palisade()
    {
        // 45 folders of 100 characters: the working folder's path is about 4,500 bytes, longer than PATH_MAX (4,096).
        const string script = """
            top=$PWD/deep-$1; mkdir "$top" && cd "$top" || exit 1
            d=$(printf 'd%.0s' $(seq 100)); for i in $(seq 45); do mkdir "$d" && cd "$d" || exit 2; done
            echo deep > f && cat f && cp f g && mv g h && ls && rm h
            printf '#!/bin/sh\necho ran\n' > s && chmod +x s && ./s && cat < f
            cd / && rm -rf "$top"
            """;
        ProcessResult native = _p.Direct("bash", "-c", script, "bash", "native");
        ProcessResult palisade = _p.Run(["--driver", PalisadeRun.Driver("antivirus")], "bash", "-c", script, "bash", "palisade");

        Assert.Equal("deep\nf\nh\nran\ndeep\n", native.Stdout);
        Assert.Equal(native.ExitCode, palisade.ExitCode);
        Assert.Equal(native.Stdout, palisade.Stdout);
    }

    [GuestFact("sh")]
    public void Three_hundred_guests_started_at_once_all_run_while_receiving_is_handed_over()
    {
        // Three hundred programs started together under the antivirus: their execs are scanned, so receiving is handed
        // to new threads again and again. Every guest runs and ends as without palisade (once, a receiving thread that
        // saw its hand-over claimed ended before the next was counted, the listener was closed and later calls got ENOSYS).
        const string script = """
            i=0 pids=""
            while [ "$i" -lt 300 ]; do /bin/sh -c 'exit 7' & pids="$pids $!"; i=$((i + 1)); done
            ok=0; for p in $pids; do wait "$p"; [ $? -eq 7 ] && ok=$((ok + 1)); done
            echo "ended 7: $ok"
            """;
        ProcessResult native = _p.Direct("sh", "-c", script);
        ProcessResult palisade = _p.Run(["--driver", PalisadeRun.Driver("antivirus")], "sh", "-c", script);

        Assert.Equal("ended 7: 300\n", native.Stdout);
        Assert.True(palisade.ExitCode == 0 && palisade.Stdout == native.Stdout, $"status {palisade.ExitCode}: {palisade.Stdout}\n{palisade.Stderr}");
    }

    [RootGuestFact("gcc", "setpriv", "mkfifo", "bash")]
    public void Four_hundred_children_killed_while_waiting_in_a_fifo_open_leave_no_kernel_thread_behind()
    {
        string fifo = Path.Combine(_scratch, "fifo");
        Assert.Equal(0, ProcessRunner.Run("mkfifo", ["-m", "666", fifo]).ExitCode);

        // As the issue found it: a guest of another uid limited to 20 processes, 400 children killed in their opens.
        string script = $"export KERNEL_PID=$PPID; ulimit -u 20; k='{KernelDoorProbe.Path}'; " +
            $"before=$(\"$k\" threads | cut -d' ' -f2); '{FifoProbe.Path}' '{fifo}' 400 kill; " +
            "echo before $before; \"$k\" threads-at-most $((before + 8))";
        ProcessResult r = _p.Run(["--driver", PalisadeRun.Driver("antivirus")],
            "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", "-c", script);

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}: {r.Stdout}\n{r.Stderr}");
        string[] lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("killed 400", lines[0]);
        int before = int.Parse(lines[1].Split(' ')[1], CultureInfo.InvariantCulture);
        int after = int.Parse(lines[2].Split(' ')[1], CultureInfo.InvariantCulture);
        Assert.True(after <= before + 8, $"the kernel had {before} threads before and {after} after 400 abandoned opens");
    }
}
