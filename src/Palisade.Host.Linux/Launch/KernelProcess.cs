using System.Globalization;
using Palisade.Interop;

namespace Palisade.Host.Linux.Launch;

/// <summary>
/// The process the kernel runs in, closed to its guests before the first guest starts. A verb that runs guests calls
/// <see cref="Prepare"/> first:
/// <list type="bullet">
/// <item>The .NET runtime's diagnostics are off: no diagnostics IPC socket (through which a client can load a profiler
/// into the process, dump its memory or set its environment) and no debugger pipes. The runtime reads
/// <c>DOTNET_EnableDiagnostics</c> only from the environment it starts with (.NET 10 honours no runtimeconfig.json
/// property for it), so a process started without it re-executes itself with it set, after removing the files its
/// runtime already created. The <c>palisade</c> wrapper sets it, which saves that second start.</item>
/// <item>The process is not dumpable (<c>PR_SET_DUMPABLE</c> 0): Linux refuses ptrace, <c>/proc/PID/mem</c> and the
/// other ptrace-guarded files of the kernel to every process without <c>CAP_SYS_PTRACE</c>, whatever its uid, and
/// writes no core dump of the kernel's memory.</item>
/// </list>
/// Variables palisade sets for itself are listed in <see cref="Launcher.WrapperEnvironment"/>, with the caller's own
/// value (if any) kept under <see cref="OriginalPrefix"/>, so that the launcher gives the guest the caller's environment.
/// </summary>
internal static unsafe class KernelProcess
{
    /// <summary>The runtime's switch for the debugger, the profiler and the diagnostics IPC (0: all off).</summary>
    public const string DiagnosticsVariable = "DOTNET_EnableDiagnostics";

    /// <summary>Prefix of the variable that keeps the caller's value of a variable palisade overrode for itself.</summary>
    public const string OriginalPrefix = "PALISADE_ORIGINAL_";

    /// <summary>True for the verbs that run guests: <c>run</c> and the hidden <c>__supervise</c>.</summary>
    public static bool RunsGuests(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return args.Length > 0 && (args[0] == "run" || args[0] == HiddenVerbs.Supervise);
    }

    /// <summary>
    /// Closes the runtime's side doors and makes the process non-dumpable. Returns null when done; when the runtime
    /// started with diagnostics it re-executes the process and does not return, unless that fails: then, and when the
    /// process cannot be made non-dumpable, it returns why (the caller must not run guests).
    /// </summary>
    public static string? Prepare()
    {
        if (Environment.GetEnvironmentVariable(DiagnosticsVariable) != "0")
        {
            return ReexecuteWithoutDiagnostics();
        }

        if (Libc.Prctl(Libc.PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        {
            return $"prctl(PR_SET_DUMPABLE, 0) failed: errno {Libc.LastError}";
        }

        return null;
    }

    /// <summary>The files the runtime of process <paramref name="pid"/> creates for diagnostics in the temporary folder.</summary>
    public static IEnumerable<string> DiagnosticFilesOf(int pid, string temporaryFolder)
    {
        string p = pid.ToString(CultureInfo.InvariantCulture);
        if (!Directory.Exists(temporaryFolder))
        {
            return [];
        }

        return Directory.EnumerateFiles(temporaryFolder, "dotnet-diagnostic-" + p + "-*")
            .Concat(Directory.EnumerateFiles(temporaryFolder, "clr-debug-pipe-" + p + "-*"));
    }

    private static string ReexecuteWithoutDiagnostics()
    {
        string? callers = Environment.GetEnvironmentVariable(DiagnosticsVariable);
        if (callers is not null && Libc.Setenv(OriginalPrefix + DiagnosticsVariable, callers, 1) != 0)
        {
            return $"setenv failed: errno {Libc.LastError}";
        }

        string added = Environment.GetEnvironmentVariable(Launcher.WrapperEnvironment) ?? "";
        if (!added.Split(' ').Contains(DiagnosticsVariable))
        {
            added = (added + " " + DiagnosticsVariable).Trim();
        }

        if (Libc.Setenv(DiagnosticsVariable, "0", 1) != 0 || Libc.Setenv(Launcher.WrapperEnvironment, added, 1) != 0)
        {
            return $"setenv failed: errno {Libc.LastError}";
        }

        // The socket and pipes this runtime made would outlive it: exec runs no shutdown. A file of the same pattern that
        // cannot be deleted is not this runtime's: a process that had this pid before, under another user, left it.
        foreach (string file in DiagnosticFilesOf(Environment.ProcessId, Path.GetTempPath()))
        {
            try
            {
                File.Delete(file);
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
            }
        }

        string[] argv = File.ReadAllText("/proc/self/cmdline").TrimEnd('\0').Split('\0');
        byte** native = Spawn.AllocStrings(argv);
        byte* self = stackalloc byte[16];
        "/proc/self/exe\0"u8.CopyTo(new Span<byte>(self, 16));
        _ = Libc.ExecV(self, native);
        int error = Libc.LastError;
        Spawn.FreeStrings(native);
        return $"cannot re-execute itself with {DiagnosticsVariable}=0 (errno {error}); start palisade through the palisade wrapper";
    }
}
