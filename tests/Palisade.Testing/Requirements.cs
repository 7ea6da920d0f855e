// Tests that need something of the machine (a kernel feature, a program, root) say so with an attribute; when it is
// missing, xunit reports the test as skipped with the reason, instead of failing it or passing it without testing.
namespace Palisade.Testing;

/// <summary>What the machine offers, for the attributes below.</summary>
internal static class Requirements
{
    /// <summary>Why a guest cannot run here (Linux and seccomp user notification are needed), or null when it can.</summary>
    public static string? GuestMissing()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "running a guest needs Linux";
        }

        const string actions = "/proc/sys/kernel/seccomp/actions_avail";
        if (!File.Exists(actions) || !File.ReadAllText(actions).Contains("user_notif", StringComparison.Ordinal))
        {
            return "this kernel has no seccomp user notification (" + actions + ")";
        }

        return null;
    }

    /// <summary>Why one of <paramref name="programs"/> cannot run (an absolute path that does not exist, a name not in PATH), or null.</summary>
    public static string? ProgramMissing(IEnumerable<string> programs)
    {
        foreach (string program in programs)
        {
            if (program.Contains('/', StringComparison.Ordinal) ? !File.Exists(program) : !InPath(program))
            {
                return program + " is not installed";
            }
        }

        return null;
    }

    /// <summary>Why the tests cannot act as root here (they switch users and mount file systems), or null.</summary>
    public static string? RootMissing() =>
        Palisade.Interop.Libc.GetUid() == 0 ? null : "needs root (the guests drop to other uids, the test mounts procfs)";

    /// <summary>Why the last close of a file description cannot be watched (a privileged fanotify group needs CAP_SYS_ADMIN), or null.</summary>
    public static string? FanotifyMissing()
    {
        int group = Palisade.Interop.Fanotify.Init(Palisade.Interop.Fanotify.FAN_CLOEXEC);
        Palisade.Interop.Libc.CloseOwned(group);
        return group >= 0 ? null : "needs a privileged fanotify group (CAP_SYS_ADMIN) to see the last close of a file description (errno " + -group + ")";
    }

    /// <summary>Why a file's writers cannot be checked with a read lease (leases disabled: /proc/sys/fs/leases-enable is 0), or null.</summary>
    public static string? LeasesMissing() =>
        File.Exists("/proc/sys/fs/leases-enable") && File.ReadAllText("/proc/sys/fs/leases-enable").Trim() == "0"
            ? "needs file leases (/proc/sys/fs/leases-enable is 0) to check whether a file is open for writing"
            : null;

    private static bool InPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, name)));
}

/// <summary>A fact that runs a guest (Linux, seccomp user notification) and may need programs: skipped with the reason otherwise.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class GuestFactAttribute : FactAttribute
{
    /// <param name="programs">Programs the test runs: absolute paths, or names looked up in PATH.</param>
    public GuestFactAttribute(params string[] programs)
    {
        Skip = Requirements.GuestMissing() ?? Requirements.ProgramMissing(programs);
    }
}

/// <summary>A theory that runs a guest (Linux, seccomp user notification) and may need programs: skipped with the reason otherwise.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class GuestTheoryAttribute : TheoryAttribute
{
    /// <param name="programs">Programs the test runs: absolute paths, or names looked up in PATH.</param>
    public GuestTheoryAttribute(params string[] programs)
    {
        Skip = Requirements.GuestMissing() ?? Requirements.ProgramMissing(programs);
    }
}

/// <summary>A fact that needs programs (a compiler, a tool): skipped with the reason when one is missing.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class ProgramFactAttribute : FactAttribute
{
    /// <param name="programs">Absolute paths, or names looked up in PATH.</param>
    public ProgramFactAttribute(params string[] programs)
    {
        Skip = Requirements.ProgramMissing(programs);
    }
}

/// <summary>A theory that runs guests as root and as other users (Linux, seccomp user notification, root, programs): skipped with the reason otherwise.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class RootGuestTheoryAttribute : TheoryAttribute
{
    /// <param name="programs">Programs the test runs: absolute paths, or names looked up in PATH.</param>
    public RootGuestTheoryAttribute(params string[] programs)
    {
        Skip = Requirements.GuestMissing() ?? Requirements.RootMissing() ?? Requirements.ProgramMissing(programs);
    }
}

/// <summary>A fact that runs guests as root and as other users: skipped with the reason otherwise.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class RootGuestFactAttribute : FactAttribute
{
    private int _cpus;

    /// <param name="programs">Programs the test runs: absolute paths, or names looked up in PATH.</param>
    public RootGuestFactAttribute(params string[] programs)
    {
        Skip = Requirements.GuestMissing() ?? Requirements.RootMissing() ?? Requirements.ProgramMissing(programs);
    }

    /// <summary>The CPUs the test needs at least (one it keeps busy while it works on another); skipped with fewer.</summary>
    public int Cpus
    {
        get => _cpus;
        set
        {
            _cpus = value;
            Skip ??= Environment.ProcessorCount < value ? $"needs {value} CPUs, this process may use {Environment.ProcessorCount}" : null;
        }
    }
}

/// <summary>A fact that needs root (it acts as other users, mounts, chroots): skipped with the reason otherwise.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class RootFactAttribute : FactAttribute
{
    /// <param name="programs">Programs the test runs besides: absolute paths, or names looked up in PATH.</param>
    public RootFactAttribute(params string[] programs)
    {
        Skip = Requirements.RootMissing() ?? Requirements.GuestMissing() ?? Requirements.ProgramMissing(programs);
    }
}

/// <summary>A fact that runs a guest whose cleanups are seen at the last close (fanotify, CAP_SYS_ADMIN): skipped with the reason otherwise.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class LastCloseFactAttribute : FactAttribute
{
    /// <param name="programs">Programs the test runs: absolute paths, or names looked up in PATH.</param>
    public LastCloseFactAttribute(params string[] programs)
    {
        Skip = Requirements.GuestMissing() ?? Requirements.FanotifyMissing() ?? Requirements.ProgramMissing(programs);
    }
}

/// <summary>A fact that runs a guest whose files' state is queried (last closes through fanotify, writers through a read
/// lease): skipped with the reason otherwise.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class FileStateFactAttribute : FactAttribute
{
    /// <param name="programs">Programs the test runs: absolute paths, or names looked up in PATH.</param>
    public FileStateFactAttribute(params string[] programs)
    {
        Skip = Requirements.GuestMissing() ?? Requirements.FanotifyMissing() ?? Requirements.LeasesMissing() ?? Requirements.ProgramMissing(programs);
    }
}

/// <summary>A fact that takes file leases and may need programs: skipped with the reason otherwise.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class LeaseFactAttribute : FactAttribute
{
    /// <param name="programs">Programs the test runs: absolute paths, or names looked up in PATH.</param>
    public LeaseFactAttribute(params string[] programs)
    {
        Skip = Requirements.LeasesMissing() ?? Requirements.ProgramMissing(programs);
    }
}
