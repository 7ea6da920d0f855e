namespace Palisade.Kernel.BugChecks;

/// <summary>
/// The last step of a bug check, after guests are stopped and the dump is written. The kernel's default ends the
/// process; tests inject one that records and signals. A sink cannot stop a bug check from happening: by the time
/// it runs, the guests are stopped, the dump is on disk and the guard has halted.
/// </summary>
internal interface IBugCheckSink
{
    /// <summary>Receives the bug check. The default implementation does not return.</summary>
    void Stop(BugCheckReport report);
}

/// <summary>The production sink: ends the process with <see cref="BugCheckCodes.ExitStatus"/>.</summary>
internal sealed class ProcessExitSink : IBugCheckSink
{
    internal static readonly ProcessExitSink Instance = new();

    private ProcessExitSink()
    {
    }

    public void Stop(BugCheckReport report) => Environment.Exit(BugCheckCodes.ExitStatus);
}
