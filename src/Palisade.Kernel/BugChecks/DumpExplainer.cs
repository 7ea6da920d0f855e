using System.Globalization;
using Palisade.Kernel.Guard;

namespace Palisade.Kernel.BugChecks;

/// <summary>
/// Explains a crash dump to a person: the bug check and what each parameter means, what changed (code re-decoded
/// from the recorded bytes with Iced), where control now goes and who owns it, and the probable culprit driver; for a
/// manually initiated crash (0xE2), who asked and why, and what the system was doing.
/// Backs <c>palisade analyze</c>.
/// </summary>
internal static class DumpExplainer
{
    private const int SystemCallsShown = 16;

    internal static void Explain(CrashDump dump, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(dump);
        ArgumentNullException.ThrowIfNull(output);
        IReadOnlyList<string> p = dump.BugCheck.Parameters;
        bool manual = dump.BugCheck.Code == CodeDecoder.Hex(BugCheckCodes.ManuallyInitiatedCrash);
        output.WriteLine($"Bug check {dump.BugCheck.Code} {dump.BugCheck.Name}");
        if (dump.Region is { } region)
        {
            output.WriteLine($"  parameter 1 {Param(p, 0)}  region address or id");
            output.WriteLine($"  parameter 2 {Param(p, 1)}  expected digest (or heartbeat)");
            output.WriteLine($"  parameter 3 {Param(p, 2)}  digest found (or heartbeat)");
            output.WriteLine($"  parameter 4 {Param(p, 3)}  region type: {region.TypeName} ({Describe(region.Type)})");
            output.WriteLine($"Region: {region.Name}");
            output.WriteLine($"Detected by {dump.DetectedBy} (sweep {dump.DetectorSweep.ToString(CultureInfo.InvariantCulture)})");
        }
        else if (manual)
        {
            output.WriteLine($"  parameter 1 {Param(p, 0)}  process id of the requester");
            output.WriteLine($"  parameter 2 {Param(p, 1)}  user id of the requester");
            output.WriteLine($"  parameter 3 {Param(p, 2)}  reserved (0)");
            output.WriteLine($"  parameter 4 {Param(p, 3)}  reserved (0)");
            output.WriteLine($"Requested by {dump.DetectedBy}");
            output.WriteLine($"Reason: {(string.IsNullOrEmpty(dump.Reason) ? "none given" : dump.Reason)}");
        }
        else
        {
            for (int i = 0; i < 4; i++)
            {
                output.WriteLine($"  parameter {(i + 1).ToString(CultureInfo.InvariantCulture)} {Param(p, i)}  (not a bug check this analyzer knows)");
            }

            output.WriteLine($"Raised by {dump.DetectedBy}");
        }

        output.WriteLine($"Kernel {dump.Kernel.Version} ({dump.Kernel.Flavor}), process {dump.ProcessId.ToString(CultureInfo.InvariantCulture)}, {dump.Time:u}");
        output.WriteLine();

        if (manual && dump.Region is null)
        {
            output.WriteLine("Nothing was found corrupted: an administrator stopped the system on purpose through the kernel's control socket");
            output.WriteLine("(palisade bugcheck), as MANUALLY_INITIATED_CRASH is raised on Windows by CrashOnCtrlScroll or NotMyFault. The");
            output.WriteLine("stop itself is nobody's fault. What the system was doing at that moment is below: the loaded drivers and the");
            output.WriteLine("last system calls into the kernel (a hung guest or a driver holding operations shows there).");
        }
        else if (dump.Changes.Count == 0)
        {
            output.WriteLine("No changed bytes were recorded (a heartbeat or guard state failure carries its facts in the parameters).");
        }
        else
        {
            output.WriteLine("What changed:");
            foreach (ChangeSection change in dump.Changes)
            {
                output.WriteLine($"  {change.Key} ({change.Kind}) at {change.Address}{(change.Description is null ? string.Empty : ": " + change.Description)}");
                if (!string.IsNullOrEmpty(change.Expected))
                {
                    output.WriteLine($"    expected {Spaced(change.Expected)}");
                }

                if (!string.IsNullOrEmpty(change.Found))
                {
                    output.WriteLine($"    found    {Spaced(change.Found)}");
                }

                if (change.Kind == nameof(EvidenceKind.Code) && !string.IsNullOrEmpty(change.Found))
                {
                    CodeDecoder.Decoded decoded = CodeDecoder.Decode(Convert.FromHexString(change.Found), CodeDecoder.ParseHex(change.Address));
                    output.WriteLine($"    first instruction now: {decoded.Instruction}");
                }

                if (change.Target is not null)
                {
                    output.WriteLine($"    control now goes to {change.Target}, owned by {change.TargetOwner ?? "an unknown owner"}");
                }
            }
        }

        output.WriteLine();
        if (manual && dump.Region is null)
        {
            output.WriteLine("Probable culprit: none (the crash was initiated manually).");
        }
        else if (dump.Culprit is { } culprit)
        {
            output.WriteLine($"Probable culprit: {culprit.Assembly}{(culprit.Driver is null ? " (not a loaded driver: loaded into the kernel some other way)" : $" (driver \"{culprit.Driver}\")")}");
            output.WriteLine($"  because {culprit.Reason}");
        }
        else
        {
            output.WriteLine("Probable culprit: not identified.");
        }

        output.WriteLine();
        output.WriteLine($"Loaded drivers ({dump.Drivers.Count.ToString(CultureInfo.InvariantCulture)}):");
        foreach (DumpDriverEntry driver in dump.Drivers)
        {
            output.WriteLine($"  {driver.Name} {driver.Version}  {driver.AssemblyName}  sha256 {driver.Sha256}  {driver.Path}");
        }

        int first = Math.Max(0, dump.RecentSystemCalls.Count - SystemCallsShown);
        output.WriteLine($"Recent system calls ({dump.RecentSystemCalls.Count.ToString(CultureInfo.InvariantCulture)} recorded, last {(dump.RecentSystemCalls.Count - first).ToString(CultureInfo.InvariantCulture)} shown, newest last):");
        for (int i = first; i < dump.RecentSystemCalls.Count; i++)
        {
            SyscallRecord call = dump.RecentSystemCalls[i];
            output.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"  #{call.Sequence} {call.Time:HH:mm:ss.fff} pid {call.Pid} tid {call.Tid} {ServiceName(call.Number)} ({Arguments(call)}) = {new Palisade.Api.Status((uint)call.Result)}"));
        }
    }

    private static string Arguments(SyscallRecord call) => (Dispatch.SystemService)call.Number switch
    {
        Dispatch.SystemService.CreateFile => string.Create(CultureInfo.InvariantCulture, $"open flags 0x{call.Arg1:X}"),
        Dispatch.SystemService.CleanupFile => string.Create(CultureInfo.InvariantCulture, $"descriptor {call.Arg0}"),
        Dispatch.SystemService.RenameFile or Dispatch.SystemService.DeleteFile or Dispatch.SystemService.SetInformationFile
            or Dispatch.SystemService.ReadFile or Dispatch.SystemService.WriteFile => "file op " + (Palisade.Api.FileOperationKind)call.Arg2,
        _ => string.Create(CultureInfo.InvariantCulture, $"target {call.Arg0}, access 0x{call.Arg1:X}"),
    };

    private static string ServiceName(int number) =>
        Enum.IsDefined((Dispatch.SystemService)number) ? ((Dispatch.SystemService)number).ToString() : "service " + number.ToString(CultureInfo.InvariantCulture);

    private static string Param(IReadOnlyList<string> parameters, int index) =>
        index < parameters.Count ? parameters[index] : "(missing)";

    private static string Spaced(string hex)
    {
        var spaced = new System.Text.StringBuilder(hex.Length * 3 / 2);
        for (int i = 0; i + 1 < hex.Length; i += 2)
        {
            if (i > 0)
            {
                spaced.Append(' ');
            }

            spaced.Append(hex, i, 2);
        }

        return spaced.ToString();
    }

    private static string Describe(string type)
    {
        ulong value;
        try
        {
            value = CodeDecoder.ParseHex(type);
        }
        catch (FormatException)
        {
            return "unknown";
        }

        return (GuardRegionType)value switch
        {
            GuardRegionType.GenericData => "generic data region",
            GuardRegionType.KernelFunction => "modification of a kernel function's code",
            GuardRegionType.ProcessList => "process list corruption (views disagree)",
            GuardRegionType.SyscallEntry => "system call entry point modification",
            GuardRegionType.ObjectType => "object type procedures",
            GuardRegionType.SystemServiceTable => "modification of the system service table",
            GuardRegionType.NotificationCallout => "notification callout table modification",
            GuardRegionType.LoadedModuleList => "loaded driver list modification",
            GuardRegionType.DriverObject => "driver object corruption",
            GuardRegionType.CallbackObject => "callback object modification",
            GuardRegionType.GuardState => "the guard's own state was tampered with",
            GuardRegionType.GuardHeartbeat => "a guard context stopped or fell behind",
            GuardRegionType.JitCompileEntry => "the JIT's compile entry was hooked",
            _ => "unknown region type",
        };
    }
}
