using System.CommandLine;
using Palisade.Api;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Control;
using Palisade.Kernel.Drivers;

namespace Palisade.Cli.Commands;

/// <summary>
/// <c>palisade bugcheck [--home H] [--reason TEXT]</c>: asks the running kernel of a home, through its control socket,
/// to stop the system with bug check 0xE2 MANUALLY_INITIATED_CRASH (the counterpart of Windows' CrashOnCtrlScroll and
/// NotMyFault): every guest of that run is killed, a crash dump is written and the run exits with status 109. With
/// several runs on one home, the one that serves the control socket (the holder of the registry hive) is stopped.
/// </summary>
internal static class BugCheckCommand
{
    /// <summary>Exit status when no kernel could be asked, or it refused.</summary>
    public const int NotStopped = 1;

    /// <summary>Exit status for a reason the kernel would not accept.</summary>
    public const int BadReason = 2;

    /// <summary>How long the command waits for the kernel's process to end once it has accepted (guests are killed and
    /// the dump is written first).</summary>
    private static readonly TimeSpan EndPatience = TimeSpan.FromMinutes(1);

    public static Command Create()
    {
        var home = new Option<string?>("--home") { Description = "The home of the kernel to stop (default $PALISADE_HOME or ~/.palisade)." };
        var reason = new Option<string?>("--reason") { Description = $"Why: printed on the stop screen and kept in the dump (at most {ControlProtocol.MaxReason} characters, no control characters)." };
        var command = new Command("bugcheck", "Stop the running kernel of a home with bug check 0xE2 MANUALLY_INITIATED_CRASH: its guests are killed and a crash dump is written.") { home, reason };
        command.SetAction(parse => Run(parse.GetValue(home), parse.GetValue(reason) ?? "", Console.Out, Console.Error));
        return command;
    }

    internal static int Run(string? home, string reason, TextWriter output, TextWriter error)
    {
        string resolved = PalisadeHome.Resolve(home);
        if (!ControlProtocol.IsValidReason(reason))
        {
            error.WriteLine($"palisade bugcheck: the reason must be at most {ControlProtocol.MaxReason} characters, without control characters");
            return BadReason;
        }

        string socket = ControlSocket.PathOf(resolved);
        if (!ControlClient.TryConnect(socket, out ControlClient? connected))
        {
            error.WriteLine($"palisade bugcheck: no kernel runs on {resolved} (nothing listens on {socket})");
            return NotStopped;
        }

        using ControlClient client = connected!;
        int? kernel = client.Kernel?.ProcessId;
        Status s = client.RequestBugCheck(reason);
        if (s == Status.ConnectionRefused)
        {
            error.WriteLine($"palisade bugcheck: the kernel on {socket} closed the connection without an answer (only its own user or root may use it)");
            return NotStopped;
        }

        if (s.IsError)
        {
            error.WriteLine($"palisade bugcheck: the kernel refused: {Refusal(s)} ({s.Name})");
            return NotStopped;
        }

        string which = kernel is { } pid ? $"the kernel (process {pid})" : "the kernel";
        if (!client.WaitForEnd(EndPatience))
        {
            error.WriteLine($"palisade bugcheck: {which} accepted bug check 0xE2 but had not ended after {EndPatience.TotalSeconds:0} s");
            return NotStopped;
        }

        output.WriteLine($"{which} of {resolved} stopped with bug check 0xE2 {BugCheckCodes.NameOf(BugCheckCodes.ManuallyInitiatedCrash)}");
        string? dump = kernel is { } p ? FindDump(resolved, p) : null;
        output.WriteLine(dump is null
            ? $"no crash dump of it in {Path.Combine(resolved, "crash")} (its stop screen says why)"
            : $"Crash dump: {dump}");
        return 0;
    }

    private static string Refusal(Status s) =>
        s == Status.NotSupported ? "it has no bug check facility yet (it is still starting)"
        : s == Status.InvalidDeviceState ? "the system is already stopping"
        : s.Message;

    /// <summary>The dump a kernel's 0xE2 wrote: <c>crash/bugcheck-0xE2-*-pid&lt;pid&gt;.json</c> (docs/bugchecks.md).</summary>
    private static string? FindDump(string home, int kernel)
    {
        string directory = Path.Combine(home, "crash");
        if (!Directory.Exists(directory))
        {
            return null;
        }

        string code = CodeDecoder.Hex(BugCheckCodes.ManuallyInitiatedCrash);
        return Directory.EnumerateFiles(directory, $"bugcheck-{code}-*-pid{kernel}*.json")
            .OrderByDescending(File.GetLastWriteTimeUtc)
            .FirstOrDefault();
    }
}
