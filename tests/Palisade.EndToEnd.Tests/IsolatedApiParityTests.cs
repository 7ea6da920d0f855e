using System.Text.Json;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// Parts of the file API that keep driver objects or kernel streams, run the same in the kernel and in a driver host
/// (<c>--isolated</c>): the <c>context-probe</c> driver keeps a counter object as its file context, is refused another
/// filter's context, and appends to a file through a stream the kernel opened for writing.
/// </summary>
public sealed class IsolatedApiParityTests : IDisposable
{
    private readonly PalisadeRun _p = new();

    public void Dispose() => _p.Dispose();

    private string EventsFile => Path.Combine(_p.Work, "events.jsonl");

    private List<string> DriverMessages(string kind) =>
        [.. PalisadeRun.Events(EventsFile).Where(e => e.GetProperty("type").GetString() == "driver" && e.GetProperty("kind").GetString() == kind)
            .Select(e => e.GetProperty("message").GetString()!)];

    [GuestTheory("/bin/sh", "/bin/cat")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_file_context_is_the_drivers_own_object_across_opens_another_filters_is_refused_and_a_kernel_stream_takes_its_writes(bool isolated)
    {
        File.WriteAllText(Path.Combine(_p.Work, "probe-me"), "probe\n");
        File.WriteAllText(Path.Combine(_p.Work, "probe-log"), "");
        ProcessResult r = _p.Run(
            [.. PalisadeRun.Mode(isolated), "--flavor", "compat", "--driver", PalisadeRun.Attack("context-probe"), "--events", EventsFile],
            "/bin/sh", "-c", "cat probe-me; cat probe-me; cat probe-log");

        Assert.True(r.ExitCode == 0, $"status {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        // The counter set on the first open is the object found on the second: the same object, counted twice.
        Assert.Equal(["context 1", "context 2"], DriverMessages("context"));
        Assert.Equal(["forged InvalidHandle", "forged InvalidHandle"], DriverMessages("forged"));
        Assert.Equal(["log Success", "log Success"], DriverMessages("log"));
        Assert.Equal("probe\nprobe\nopen 1 of probe-me\nopen 2 of probe-me\n", r.Stdout);
    }

    [GuestTheory("/bin/sh", "/bin/cat", "/bin/grep")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_driver_cannot_complete_another_drivers_hold_with_a_handle_of_its_own_making(bool isolated)
    {
        // hold-forever holds the guest's open of hold-me (hold 1, 3 s, deny on timeout); context-probe then tries to
        // complete hold 1 with SuccessNoCallback through a forged handle. The open must still time out and be denied.
        File.WriteAllText(Path.Combine(_p.Work, "hold-me"), "held\n");
        File.WriteAllText(Path.Combine(_p.Work, "probe-me"), "probe\n");
        File.WriteAllText(Path.Combine(_p.Work, "probe-log"), "");
        ProcessResult r = _p.Run(
            [.. PalisadeRun.Mode(isolated), "--flavor", "compat", "--driver", PalisadeRun.Attack("hold-forever"), "--param", "hold-forever.holdSeconds=3",
                "--driver", PalisadeRun.Attack("context-probe"), "--events", EventsFile],
            "/bin/sh", "-c", "cat hold-me > /dev/null & c=$!; until grep -q '\"kind\":\"held\"' events.jsonl; do :; done; cat probe-me > /dev/null; wait $c; echo \"held cat $?\"");

        Assert.Equal("held cat 1\n", r.Stdout);
        Assert.Contains("hold-me: Permission denied", r.Stderr, StringComparison.Ordinal);
        Assert.Equal(["forged-hold InvalidHandle"], DriverMessages("forged-hold"));
    }
}
