using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using Palisade.Kernel.Guard;

namespace Palisade.Kernel.BugChecks;

/// <summary>
/// Stops the system: the first bug check wins, every guest is stopped through the actions the host registered, a
/// corruption (0x109) is analysed while the culprit is still loaded, the dump is written, the stop screen is printed and
/// the sink takes over (by default: exit with status 109). Later bug checks are ignored: the system is already down.
/// </summary>
internal sealed class KernelBugCheck
{
    private readonly List<Action> _stopActions = [];
    private readonly Lock _stopActionsLock = new();
    private readonly string _dumpDirectory;
    private readonly string _kernelVersion;
    private readonly string _flavor;
    private readonly Func<IReadOnlyList<DumpDriverEntry>> _drivers;
    private readonly TextWriter _stopScreen;
    private readonly ManualResetEventSlim _stopped = new(false);
    private int _raised;

    // Who raised: written before the latch by every real raise, so a latch set from outside (a reflective write that
    // would silence the guard) shows as a latch without a raiser.
    private int _raisingThread;

    internal KernelBugCheck(BugCheckOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _dumpDirectory = options.DumpDirectory ?? BugCheckOptions.DefaultDumpDirectory();
        if (!Path.IsPathFullyQualified(_dumpDirectory))
        {
            throw new ArgumentException($"The dump directory must be an absolute path, not \"{_dumpDirectory}\".", nameof(options));
        }

        _kernelVersion = options.KernelVersion
            ?? typeof(KernelBugCheck).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? "unknown";
        _flavor = options.Flavor.ToString().ToLowerInvariant();
        _drivers = options.Drivers ?? (() => []);
        Syscalls = options.Syscalls ?? new SyscallRing();
        Sink = options.Sink ?? ProcessExitSink.Instance;
        _stopScreen = options.StopScreen ?? Console.Error;
    }

    /// <summary>The ring of recent system calls the dump includes; the kernel records into it.</summary>
    internal SyscallRing Syscalls { get; }

    internal IBugCheckSink Sink { get; }

    /// <summary>True once a bug check has been raised.</summary>
    internal bool HasStopped => Volatile.Read(ref _raised) != 0;

    /// <summary>True when the "already raised" latch is set although no bug check was ever raised: it was forged.</summary>
    internal bool LatchForged => Volatile.Read(ref _raised) != 0 && Volatile.Read(ref _raisingThread) == 0;

    /// <summary>Set when a bug check has finished (dump written, sink called).</summary>
    internal WaitHandle Stopped => _stopped.WaitHandle;

    /// <summary>
    /// Registers an action that stops every guest (the host's kill switch). Actions run in registration order,
    /// each contained: one that throws does not keep the others from running.
    /// </summary>
    internal void AddStopAction(Action stopGuests)
    {
        ArgumentNullException.ThrowIfNull(stopGuests);
        lock (_stopActionsLock)
        {
            _stopActions.Add(stopGuests);
        }
    }

    /// <summary>Raises a bug check. A protected kernel function: the guard hashes its code.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal void Raise(BugCheckRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        Interlocked.CompareExchange(ref _raisingThread, Environment.CurrentManagedThreadId, 0);
        if (Interlocked.Exchange(ref _raised, 1) != 0)
        {
            return;
        }

        Stop(request);
    }

    /// <summary>
    /// Raises a bug check although the latch is set, when <see cref="LatchForged"/> says no bug check ever ran (the guard
    /// found the latch written from outside). Once: a real raise, or another forced one, makes it do nothing.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal void RaiseOverForgedLatch(BugCheckRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (Interlocked.CompareExchange(ref _raisingThread, Environment.CurrentManagedThreadId, 0) != 0)
        {
            return;
        }

        Volatile.Write(ref _raised, 1);
        Stop(request);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private void Stop(BugCheckRequest request)
    {
        try
        {
            StopGuests();
            CrashDump dump = BuildDump(request);
            string? path = WriteDump(dump, out string? writeError);
            WriteStopScreen(request, dump, path, writeError);
            Sink.Stop(new BugCheckReport(request.Code, request.Parameter1, request.Parameter2, request.Parameter3, request.Parameter4, dump, path));
        }
        finally
        {
            _stopped.Set();
        }
    }

    private void StopGuests()
    {
        Action[] actions;
        lock (_stopActionsLock)
        {
            actions = [.. _stopActions];
        }

        foreach (Action action in actions)
        {
            try
            {
                action();
            }
#pragma warning disable CA1031 // The system is going down: one failing stop action must not spare the other guests.
            catch (Exception e)
#pragma warning restore CA1031
            {
                _stopScreen.WriteLine($"palisade: a guest stop action failed: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    private CrashDump BuildDump(BugCheckRequest request)
    {
        IReadOnlyList<DumpDriverEntry> drivers = [];
        List<ChangeSection> changes = [];
        CulpritSection? culprit = null;
        try
        {
            drivers = _drivers();
            // A bug check the administrator asked for (0xE2) has no region and nobody to blame.
            if (request.IsCorruption)
            {
                (changes, culprit) = CorruptionAnalyzer.Analyze(request.Expected, request.Found, drivers);
                if (culprit is null && request.Parameter4 is (ulong)GuardRegionType.GuardState or (ulong)GuardRegionType.GuardHeartbeat)
                {
                    culprit = GuardTamperSuspect(drivers);
                }

                culprit ??= KernelTamperSuspect(drivers);
            }
        }
#pragma warning disable CA1031 // The dump must be written even when the analysis of a corrupted process fails.
        catch (Exception e)
#pragma warning restore CA1031
        {
            changes.Add(new ChangeSection("analysis", "Error", "0x0", null, null, $"analysis failed: {e.GetType().Name}: {e.Message}", null, null, null));
        }

        return new CrashDump(
            CrashDump.CurrentFormat,
            new BugCheckSection(
                CodeDecoder.Hex(request.Code),
                BugCheckCodes.NameOf(request.Code),
                [CodeDecoder.Hex(request.Parameter1), CodeDecoder.Hex(request.Parameter2), CodeDecoder.Hex(request.Parameter3), CodeDecoder.Hex(request.Parameter4)]),
            request.IsCorruption ? new RegionSection(CodeDecoder.Hex(request.Parameter4), request.RegionTypeName, request.RegionName, CodeDecoder.Hex(request.Parameter1)) : null,
            request.DetectedBy,
            request.DetectorSweep,
            changes,
            culprit,
            drivers,
            Syscalls.Snapshot(),
            new KernelSection(_kernelVersion, _flavor),
            DateTimeOffset.UtcNow,
            Environment.ProcessId,
            request.Reason);
    }

    private static CulpritSection? GuardTamperSuspect(IReadOnlyList<DumpDriverEntry> drivers) =>
        Suspect(
            ReflectionSuspects.Find([typeof(KernelGuard), typeof(GuardContext), typeof(GuardSchedule), typeof(KernelBugCheck)], AssembliesOf(drivers)),
            drivers,
            "the guard's own state was changed, which leaves no foreign code to follow");

    private static CulpritSection? KernelTamperSuspect(IReadOnlyList<DumpDriverEntry> drivers) =>
        Suspect(
            ReflectionSuspects.FindForKernel(AssembliesOf(drivers)),
            drivers,
            "the region changed without foreign code or a foreign entry to follow (an entry removed or a list unlinked)");

    private static string[] AssembliesOf(IReadOnlyList<DumpDriverEntry> drivers) => [.. drivers.Select(d => d.AssemblyName)];

    private static CulpritSection? Suspect((string Assembly, IReadOnlyList<string> Names)? found, IReadOnlyList<DumpDriverEntry> drivers, string what)
    {
        if (found is not { } suspect)
        {
            return null;
        }

        string? driver = null;
        foreach (DumpDriverEntry candidate in drivers)
        {
            if (string.Equals(candidate.AssemblyName, suspect.Assembly, StringComparison.OrdinalIgnoreCase))
            {
                driver = candidate.Name;
            }
        }

        return new CulpritSection(
            suspect.Assembly,
            null,
            driver,
            $"{what}; {suspect.Assembly} spells the kernel's internal names ({string.Join(", ", suspect.Names)}), as reflection on them requires");
    }

    private string? WriteDump(CrashDump dump, out string? error)
    {
        error = null;
        try
        {
            Directory.CreateDirectory(_dumpDirectory);
            string stamp = dump.Time.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
            string baseName = $"bugcheck-{dump.BugCheck.Code}-{stamp}-pid{dump.ProcessId}";
            string path = Path.Combine(_dumpDirectory, baseName + ".json");
            for (int n = 1; File.Exists(path); n++)
            {
                path = Path.Combine(_dumpDirectory, $"{baseName}-{n}.json");
            }

            File.WriteAllText(path, dump.ToJson(), Encoding.UTF8);
            return path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = e.Message;
            return null;
        }
    }

    private void WriteStopScreen(BugCheckRequest request, CrashDump dump, string? path, string? writeError)
    {
        var screen = new StringBuilder();
        screen.AppendLine();
        screen.AppendLine(CultureInfo.InvariantCulture, $"*** STOP: 0x{request.Code:X8} (0x{request.Parameter1:X16}, 0x{request.Parameter2:X16}, 0x{request.Parameter3:X16}, 0x{request.Parameter4:X16})");
        screen.AppendLine(BugCheckCodes.NameOf(request.Code));
        if (request.IsCorruption)
        {
            screen.AppendLine(CultureInfo.InvariantCulture, $"Region: {request.RegionName} (type {CodeDecoder.Hex(request.Parameter4)} {request.RegionTypeName}), detected by {request.DetectedBy}");
            screen.AppendLine(dump.Culprit is { } culprit
                ? $"Probable culprit: {culprit.Assembly}{(culprit.Driver is null ? " (not a loaded driver)" : $" (driver {culprit.Driver})")}"
                : "Probable culprit: not identified");
        }
        else
        {
            screen.AppendLine(CultureInfo.InvariantCulture, $"Requested by {request.DetectedBy}: {(string.IsNullOrEmpty(request.Reason) ? "no reason given" : request.Reason)}");
        }
        screen.AppendLine("Every guest has been stopped.");
        screen.AppendLine(path is null ? $"The crash dump could not be written: {writeError}" : $"Crash dump: {path}");
        screen.AppendLine(CultureInfo.InvariantCulture, $"Palisade kernel {dump.Kernel.Version} ({dump.Kernel.Flavor}). Run `palisade analyze <dump>` for the analysis.");
        _stopScreen.Write(screen.ToString());
        _stopScreen.Flush();
    }
}
