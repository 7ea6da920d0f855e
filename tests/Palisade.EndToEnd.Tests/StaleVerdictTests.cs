using System.Text;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// A verdict is never stale: a file the sample antivirus scanned clean and then changed to EICAR — through a descriptor
/// left open, an O_APPEND descriptor, truncate and write, another process, or from outside Palisade — is scanned again at
/// its next open or exec and denied. The verdict lives in the kernel's verdict cache, bound to the file's change stamp; the
/// kernel answers opens of the unchanged file on it without calling the driver (FileVerdictFlags.SkipPostCreate), so each
/// test runs with the driver in the kernel and in a driver host of its own (<c>--isolated</c>).
/// </summary>
public sealed class StaleVerdictTests : IDisposable
{
    private const string Eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    private readonly Parity _p = new();
    private readonly string _doc;

    public StaleVerdictTests()
    {
        _doc = Path.Combine(_p.Guest, "doc");
        File.WriteAllText(_doc, "a clean document\n");
    }

    public void Dispose() => _p.Dispose();

    private static string[] Antivirus(bool isolated) =>
        [.. PalisadeRun.Mode(isolated), "--driver", PalisadeRun.Driver("antivirus")];

    /// <summary>
    /// Runs a Python guest: <paramref name="prepare"/> (may open descriptors), then a read of doc (scanned clean, cached),
    /// then <paramref name="change"/> (makes doc EICAR; <c>EICAR</c> holds the bytes), then a second read, whose outcome
    /// it prints.
    /// </summary>
    private ProcessResult ChangeBetweenReads(bool isolated, string prepare, string change)
    {
        string eicar64 = Convert.ToBase64String(Encoding.ASCII.GetBytes(Eicar));
        string script = string.Join('\n',
            "import base64, os",
            "EICAR = base64.b64decode('" + eicar64 + "')",
            prepare,
            "print('first:', open('doc', 'rb').read() == b'a clean document\\n', flush=True)",
            change,
            "try:",
            "    open('doc', 'rb').read()",
            "    print('second: served')",
            "except PermissionError:",
            "    print('second: denied')",
            "");
        File.WriteAllText(Path.Combine(_p.Guest, "change.py"), script);
        return _p.UnderPalisade("python3 change.py", Antivirus(isolated));
    }

    private static void AssertRescannedAndDenied(ProcessResult run)
    {
        Assert.True(run.ExitCode == 0, "exit " + run.ExitCode + "; stderr: " + run.Stderr);
        Assert.Equal("first: True\nsecond: denied\n", run.Stdout);
    }

    [GuestTheory("python3")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_write_through_a_descriptor_left_open_by_another_process_is_rescanned(bool isolated)
    {
        ProcessResult run = ChangeBetweenReads(
            isolated,
            "w = os.open('doc', os.O_WRONLY)",
            "pid = os.fork()\nif pid == 0:\n    os.write(w, EICAR)\n    os._exit(0)\nos.waitpid(pid, 0)");

        AssertRescannedAndDenied(run);
    }

    [GuestTheory("python3")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_write_through_an_O_APPEND_descriptor_is_rescanned(bool isolated)
    {
        File.WriteAllText(_doc, "");
        string eicar64 = Convert.ToBase64String(Encoding.ASCII.GetBytes(Eicar));
        string script = string.Join('\n',
            "import base64, os",
            "a = os.open('doc', os.O_WRONLY | os.O_APPEND)",
            "print('first:', open('doc', 'rb').read() == b'', flush=True)",
            "os.write(a, base64.b64decode('" + eicar64 + "'))",
            "try:",
            "    open('doc', 'rb').read()",
            "    print('second: served')",
            "except PermissionError:",
            "    print('second: denied')",
            "");
        File.WriteAllText(Path.Combine(_p.Guest, "append.py"), script);

        ProcessResult run = _p.UnderPalisade("python3 append.py", Antivirus(isolated));

        AssertRescannedAndDenied(run);
    }

    [GuestTheory("python3")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_truncate_and_write_through_an_open_descriptor_is_rescanned(bool isolated)
    {
        ProcessResult run = ChangeBetweenReads(
            isolated,
            "w = os.open('doc', os.O_WRONLY)",
            "os.ftruncate(w, 0)\nos.write(w, EICAR)");

        AssertRescannedAndDenied(run);
    }

    [GuestTheory("/bin/sh", "/bin/cat", "mkfifo")]
    [InlineData(false)]
    [InlineData(true)]
    public void A_change_made_from_outside_Palisade_while_the_guest_waits_is_rescanned(bool isolated)
    {
        string fifo = Path.Combine(_p.Guest, "go");
        Assert.Equal(0, _p.Run.Direct("mkfifo", fifo).ExitCode);
        using BackgroundRun run = _p.Run.Start(Antivirus(isolated), "/bin/sh", "-c",
            $"cd {_p.Guest} && cat doc && read line < go && (cat doc || echo denied)");

        Assert.Equal("a clean document", run.NextLine());
        File.WriteAllText(_doc, Eicar);
        File.WriteAllText(fifo, "go\n");
        Assert.Equal("denied", run.NextLine());
        Assert.Contains("Permission denied", run.Wait().Stderr, StringComparison.Ordinal);
    }

    [GuestTheory("/bin/sh", "mkfifo")]
    [InlineData(false)]
    [InlineData(true)]
    public void An_image_changed_from_outside_Palisade_after_it_ran_is_rescanned_at_its_next_exec(bool isolated)
    {
        string tool = Path.Combine(_p.Guest, "tool");
        File.WriteAllText(tool, "#!/bin/sh\necho clean tool ran\n");
        File.SetUnixFileMode(tool, Parity.Mode("755"));
        string fifo = Path.Combine(_p.Guest, "go");
        Assert.Equal(0, _p.Run.Direct("mkfifo", fifo).ExitCode);
        using BackgroundRun run = _p.Run.Start(Antivirus(isolated), "/bin/sh", "-c",
            $"cd {_p.Guest} && ./tool && read line < go && (./tool || echo denied)");

        Assert.Equal("clean tool ran", run.NextLine());
        File.WriteAllText(tool, Eicar + "\n");
        File.WriteAllText(fifo, "go\n");
        Assert.Equal("denied", run.NextLine());
        Assert.Contains("Permission denied", run.Wait().Stderr, StringComparison.Ordinal);
    }
}
