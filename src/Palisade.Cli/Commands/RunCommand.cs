using System.CommandLine;
using Palisade.Api;
using Palisade.Host.Linux.Launch;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Events;
using Palisade.Kernel.Registry;

namespace Palisade.Cli.Commands;

/// <summary>
/// <c>palisade run [--driver NAME|PATH]... [--isolated|--in-kernel] [--param NAME.KEY=VALUE]... [--events FILE|-] [--events-policy drop|block] [--flavor protected|compat] -- PROGRAM [ARGS...]</c>:
/// boots the kernel, loads and verifies the drivers, and runs PROGRAM and its whole process tree under it.
/// </summary>
internal static class RunCommand
{
    /// <summary>The exit status when palisade itself cannot start the program (bad options, a refused driver).</summary>
    public const int SetupFailure = 125;

    private static readonly Dictionary<string, string> NoOverrides = new(StringComparer.Ordinal);

    public static Command Create()
    {
        var drivers = new Option<string[]>("--driver") { Description = "A driver package folder, or the name of a sample driver (antivirus, firewall, appcontrol, selfprotect). Repeatable.", AllowMultipleArgumentsPerToken = false };
        var isolated = new Option<bool>("--isolated") { Description = "Run every driver in a driver host process of its own, reaching the kernel only through the API, whatever its manifest asks. Without --isolated or --in-kernel each driver runs where its manifest's \"hosting\" says: isolated unless it says \"in-kernel\" (in the compat flavor, a manifest that says nothing means in the kernel). docs/security.md, \"Where a driver runs\"." };
        var inKernel = new Option<bool>("--in-kernel") { Description = "Run every driver inside the kernel process, whatever its manifest asks: verified at load in the protected flavor, then watched by the guard, but not held off by a process boundary." };
        var parameters = new Option<string[]>("--param") { Description = "A driver parameter NAME.KEY=VALUE; wins over the registry's Services\\NAME\\Parameters for the whole run (other values follow the registry, also while the run goes on). Repeatable." };
        var events = new Option<string?>("--events") { Description = "Write one JSON object per line (docs/events.md) for every mediated operation and driver event to FILE, or to standard error with '-'." };
        var eventsPolicy = new Option<string>("--events-policy") { Description = "When the events reader is slower than the kernel: drop (default: lines are dropped, counted and reported as gaps) or block (guest operations wait for room; nothing is lost).", DefaultValueFactory = _ => "drop" };
        var flavor = new Option<string>("--flavor") { Description = "protected (default) or compat (no guard, unsigned drivers; announced at start).", DefaultValueFactory = _ => "protected" };
        var home = new Option<string?>("--home") { Description = "The kernel's state folder (default $PALISADE_HOME or ~/.palisade)." };
        var program = new Argument<string[]>("program") { Description = "The program and its arguments, after --.", Arity = ArgumentArity.OneOrMore };
        var run = new Command("run", "Run a Linux program under the kernel, with drivers deciding what it may do.") { drivers, isolated, inKernel, parameters, events, eventsPolicy, flavor, home, program };
        run.SetAction(parse => Run(
            parse.GetValue(drivers) ?? [], parse.GetValue(isolated), parse.GetValue(inKernel), parse.GetValue(parameters) ?? [], parse.GetValue(events), parse.GetValue(eventsPolicy)!,
            parse.GetValue(flavor)!, parse.GetValue(home), parse.GetValue(program)!));
        return run;
    }

    /// <summary>Finds a driver package: a folder path, or a sample driver's name under drivers/out of this clone.</summary>
    public static string? ResolveDriver(string nameOrPath)
    {
        if (Directory.Exists(nameOrPath))
        {
            return Path.GetFullPath(nameOrPath);
        }

        string? repo = Environment.GetEnvironmentVariable("PALISADE_REPO");
        foreach (string root in new[] { repo, AppContext.BaseDirectory }.Where(r => !string.IsNullOrEmpty(r))!)
        {
            for (DirectoryInfo? d = new(root!); d is not null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "drivers", "out", nameOrPath);
                if (Directory.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    /// <summary>
    /// On a bug check, before the dump is written: every guest of the run is killed, those that left the process tree
    /// included (the run's cgroup, or the descendants of this process, which is their subreaper). Pids from the kernel's
    /// process table are not used: one whose exit was never reported may by now name an unrelated process.
    /// </summary>
    private static void StopGuests() => GuestTree.StopAll();

    private static int Run(string[] driverArgs, bool isolated, bool inKernel, string[] paramArgs, string? eventsPath, string policyText, string flavorText, string? home, string[] program)
    {
        if (isolated && inKernel)
        {
            Console.Error.WriteLine("palisade: --isolated and --in-kernel contradict each other; give one, or neither to follow each driver's manifest");
            return SetupFailure;
        }

        DriverMode mode = isolated ? DriverMode.Isolated : inKernel ? DriverMode.InKernel : DriverMode.Default;
        if (!Enum.TryParse(flavorText, ignoreCase: true, out KernelFlavor flavor) || !Enum.IsDefined(flavor))
        {
            Console.Error.WriteLine($"palisade: unknown flavor '{flavorText}' (protected or compat)");
            return SetupFailure;
        }

        if (!Enum.TryParse(policyText, ignoreCase: true, out EventsPolicy policy) || !Enum.IsDefined(policy))
        {
            Console.Error.WriteLine($"palisade: unknown events policy '{policyText}' (drop or block)");
            return SetupFailure;
        }

        var overrides = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (string p in paramArgs)
        {
            int dot = p.IndexOf('.', StringComparison.Ordinal);
            int eq = p.IndexOf('=', StringComparison.Ordinal);
            if (dot <= 0 || eq <= dot + 1)
            {
                Console.Error.WriteLine($"palisade: --param '{p}' is not NAME.KEY=VALUE");
                return SetupFailure;
            }

            string driver = p[..dot];
            if (!overrides.TryGetValue(driver, out Dictionary<string, string>? map))
            {
                overrides[driver] = map = new Dictionary<string, string>(StringComparer.Ordinal);
            }

            map[p[(dot + 1)..eq]] = p[(eq + 1)..];
        }

        Stream? events = null;
        if (eventsPath is not null)
        {
            try
            {
                events = eventsPath == "-" ? Console.OpenStandardError() : new FileStream(eventsPath, FileMode.Create, FileAccess.Write, FileShare.Read);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"palisade: cannot write events to {eventsPath}: {e.Message}");
                return SetupFailure;
            }
        }

        // The launcher's runtime starts while the kernel boots and loads the drivers (it waits for what to trap).
        LauncherProcess launcher;
        try
        {
            launcher = LauncherProcess.Spawn(LaunchCommand.OfCurrentProcess(), program[0], program[1..]);
        }
        catch (InvalidOperationException e)
        {
            events?.Dispose();
            Console.Error.WriteLine($"palisade: cannot run {program[0]}: {e.Message}");
            return SetupFailure;
        }

        using LauncherProcess spawned = launcher;
        using PalisadeKernel? kernel = KernelBoot.Boot(home, flavor, events, ownsEvents: eventsPath != "-", new EventStreamOptions(policy));
        if (kernel is null)
        {
            return SetupFailure;
        }

        // The event log is the kernel's output: no guest writes it (a forged line would be the kernel's word).
        if (events is FileStream log)
        {
            _ = kernel.KernelFiles.Add(log.SafeFileHandle, Palisade.Kernel.Hosting.KernelFileKind.File);
        }

        // The guard starts before any driver loads, so that every registration goes through its sanctioned path.
        using KernelProtection protection = KernelProtection.Start(kernel, stopGuests: StopGuests);
        var packages = new List<(string, IReadOnlyDictionary<string, string>)>(driverArgs.Length);
        foreach (string d in driverArgs)
        {
            string? dir = ResolveDriver(d);
            if (dir is null)
            {
                Console.Error.WriteLine($"palisade: no driver package '{d}' (a folder, or a sample name after ./palisade built drivers/out)");
                return SetupFailure;
            }

            // The kernel reads the driver's Parameters key itself, and keeps following it; --param values win over it.
            string name = Path.GetFileName(dir.TrimEnd('/'));
            packages.Add((dir, overrides.GetValueOrDefault(name) ?? NoOverrides));
        }

        // Every package is verified and every driver host started before the first driver loads: the hosts start together.
        Status s = kernel.LoadDriverPackages(packages, mode, HiddenVerbs.DriverHostCommand(), out int refused, out string message);
        if (s.IsError)
        {
            Console.Error.WriteLine($"palisade: driver {driverArgs[refused]} refused: {message} ({s.Name})");
            return SetupFailure;
        }

        var mediator = new KernelMediator(kernel.Host);
        int status;
        string? failure = null;
        try
        {
            status = HiddenVerbs.RunSupervised(spawned, mediator, mediator.ReportFault);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            failure = e.Message;
            status = SetupFailure;
        }

        // A bug check kills the guests and removes the run's cgroup before it writes its dump: the program's end (killed,
        // or its cgroup gone under the run's waiter) must not race it to the exit. Its sink ends the process with status
        // 109 once the dump is written and the stop screen shown.
        if (protection.BugCheck.HasStopped)
        {
            protection.BugCheck.Stopped.WaitOne();
            return BugCheckCodes.ExitStatus;
        }

        if (failure is not null)
        {
            Console.Error.WriteLine($"palisade: cannot run {program[0]}: {failure}");
        }

        return status;
    }
}
