using Palisade.Kernel.Guard;

namespace Palisade.Kernel.BugChecks;

/// <summary>
/// What the bug check needs from the kernel: where dumps go, the kernel's identity, the loaded driver list, the
/// recent system calls and the last step (the sink). Validated at construction of <see cref="KernelBugCheck"/>.
/// </summary>
internal sealed class BugCheckOptions
{
    /// <summary>The directory dumps are written to; defaults to <see cref="DefaultDumpDirectory"/>.</summary>
    public string? DumpDirectory { get; init; }

    /// <summary>The kernel version written into dumps; defaults to the kernel assembly's informational version.</summary>
    public string? KernelVersion { get; init; }

    /// <summary>The flavor the kernel booted in.</summary>
    public KernelFlavor Flavor { get; init; } = KernelFlavor.Protected;

    /// <summary>Returns the loaded drivers at the time of the bug check.</summary>
    public Func<IReadOnlyList<DumpDriverEntry>>? Drivers { get; init; }

    /// <summary>The ring the kernel records system calls into.</summary>
    public SyscallRing? Syscalls { get; init; }

    /// <summary>The last step; the kernel's default ends the process.</summary>
    public IBugCheckSink? Sink { get; init; }

    /// <summary>Where the stop screen goes; standard error by default.</summary>
    public TextWriter? StopScreen { get; init; }

    /// <summary>$PALISADE_HOME/crash, or ~/.palisade/crash when PALISADE_HOME is not set.</summary>
    public static string DefaultDumpDirectory()
    {
        string? home = Environment.GetEnvironmentVariable("PALISADE_HOME");
        if (string.IsNullOrEmpty(home))
        {
            home = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".palisade");
        }

        return Path.Combine(home, "crash");
    }
}
