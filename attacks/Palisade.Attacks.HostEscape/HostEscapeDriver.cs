using System.Runtime.InteropServices;
using Palisade.Api;

namespace Palisade.Attacks.HostEscape;

/// <summary>
/// Package <c>host-escape</c>, loaded isolated: from its driver host it reaches for the kernel (its parent) every way a
/// driver's own code could, and reports what each attempt got in one <c>probe</c> event: reading the kernel's memory
/// through <c>/proc/PID/mem</c>, its environment and descriptors through <c>/proc</c>, attaching with ptrace, a signal
/// (kill with signal 0, which checks the right to signal), a pidfd of the kernel, and a file of the kernel's its
/// <c>secret</c> parameter names. Each part is <c>NAME=denied</c> (or the errno) when the boundary held, <c>NAME=OPEN</c>
/// when it did not.
/// </summary>
public sealed partial class HostEscapeDriver : IDriver
{
    /// <inheritdoc/>
    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        int kernel = GetParentPid();
        string secret = context.Parameters.GetValueOrDefault("secret") ?? "/nonexistent";
        string report = string.Join(' ',
            "uid=" + GetUid(),
            "mem=" + TryRead($"/proc/{kernel}/mem"),
            "environ=" + TryRead($"/proc/{kernel}/environ"),
            "fd=" + TryList($"/proc/{kernel}/fd"),
            "ptrace=" + Errno(Ptrace(16 /* PTRACE_ATTACH */, kernel, 0, 0)),
            "kill=" + Errno(Kill(kernel, 0)),
            "pidfd=" + Errno((int)Syscall(434 /* pidfd_open */, kernel, 0)),
            "secret=" + TryRead(secret));
        return context.ReportEvent("probe", report, kernel, null);
    }

    /// <inheritdoc/>
    public void Unload()
    {
    }

    private static string TryRead(string path)
    {
        try
        {
            using FileStream f = File.OpenRead(path);
            return f.Read(new byte[16]) >= 0 ? "OPEN" : "OPEN";
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            return "denied";
        }
    }

    private static string TryList(string path)
    {
        try
        {
            return Directory.EnumerateFileSystemEntries(path).Any() ? "OPEN" : "OPEN";
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            return "denied";
        }
    }

    private static string Errno(long result) => result >= 0 ? "OPEN" : Marshal.GetLastPInvokeError() switch
    {
        1 => "EPERM",
        13 => "EACCES",
        var e => "errno" + e,
    };

    [LibraryImport("libc", EntryPoint = "getppid")]
    private static partial int GetParentPid();

    [LibraryImport("libc", EntryPoint = "getuid")]
    private static partial uint GetUid();

    [LibraryImport("libc", EntryPoint = "ptrace", SetLastError = true)]
    private static partial long Ptrace(long request, int pid, nint address, nint data);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a1, long a2);
}

/// <summary>
/// Package <c>host-crash</c>, loaded isolated: a minifilter whose faults deny (its timeout verdict), and whose pre-create
/// ends its own process (<see cref="Environment.FailFast(string)"/>) on an open of a file named <c>crash-me</c>. The
/// kernel must survive, deny that open, and keep denying through the dead driver's registration.
/// </summary>
public sealed class HostCrashDriver : IDriver
{
    /// <inheritdoc/>
    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Status s = context.Files.RegisterFilter(new FilterRegistration
        {
            Name = "host-crash",
            Altitude = "388000",
            Operations =
            [
                new FileOperationRegistration
                {
                    Kind = FileOperationKind.Create,
                    PreOperation = static (ref FileOperation op) =>
                    {
                        if (op.Path.EndsWith("/crash-me", StringComparison.Ordinal))
                        {
                            Environment.FailFast("host-crash: a driver host ends itself in a pre-create");
                        }

                        return PreOperationStatus.SuccessNoCallback;
                    },
                },
            ],
        }, out CallbackCookie filter);
        return s.IsError ? s : context.SetCallbackOptions(filter, new CallbackOptions { TimeoutVerdict = TimeoutVerdict.Deny });
    }

    /// <inheritdoc/>
    public void Unload()
    {
    }
}

/// <summary>
/// Package <c>hold-forever</c>: a driver that tries to hang guests by holding what it could decide and never completing
/// it: every open of a file named <c>hold-me</c> (<see cref="IFilterManager.PendPreOperation"/>), every exec of a program
/// named <c>hold-exec</c> (<see cref="IProcessCallbacks.PendCreate"/>), and every signal sent to a process named
/// <c>hold-kill</c> (<see cref="IObjectCallbacks.PendOperation"/>). The kernel bounds the hold by
/// the registration's hold time (parameter <c>holdSeconds</c>, 1 by default), applies the timeout verdict the driver chose (deny), and tells the driver
/// through its cancel callback, which reports <c>hold-ended</c> with the hold's id and how it ended. Run isolated, it
/// also proves that a hold made in a driver host lives in the kernel: it ends on time even though the host never
/// answers for it.
/// </summary>
public sealed class HoldForeverDriver : IDriver
{
    private IDriverContext? _context;
    private PendedOperationCancelCallback? _ended;

    /// <inheritdoc/>
    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        _ended = held => context.ReportEvent("hold-ended", "hold " + held.Id + ": " + held.State, held.RequesterProcessId, null);
        Status s = context.Files.RegisterFilter(new FilterRegistration
        {
            Name = "hold-forever",
            Altitude = "388000",
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = Hold }],
        }, out CallbackCookie filter);
        if (s.IsError)
        {
            return s;
        }

        int seconds = context.Parameters.TryGetValue("holdSeconds", out string? value) ? int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) : 1;
        var options = new CallbackOptions { MaximumHoldTime = TimeSpan.FromSeconds(seconds), TimeoutVerdict = TimeoutVerdict.Deny };
        s = context.SetCallbackOptions(filter, options);
        if (s.IsError || (s = context.Processes.RegisterProcessCreate(HoldExec, out CallbackCookie create)).IsError
            || (s = context.SetCallbackOptions(create, options)).IsError)
        {
            return s;
        }

        s = context.Objects.Register(new ObjectCallbackRegistration { Altitude = "388000", ObjectTypes = ObjectTypes.Process, PreOperation = HoldKill }, out CallbackCookie objects);
        return s.IsError ? s : context.SetCallbackOptions(objects, options);
    }

    private Status HoldExec(in ProcessCreateInfo info)
    {
        if (!info.ImagePath.EndsWith("/hold-exec", StringComparison.Ordinal))
        {
            return Status.Success;
        }

        Status s = _context!.Processes.PendCreate(in info, _ended, out IPendedOperation? held);
        _ = _context.ReportEvent("held", "hold " + held?.Id + ": " + s + ", " + held?.State, info.CreatorProcessId, info.ImagePath);
        return s.IsSuccess ? Status.Pending : Status.Success;
    }

    private void HoldKill(ref ObjectPreOperationInfo info)
    {
        if (info.AccessKind != ObjectAccessKind.Signal || CommandOf(info.TargetProcessId) != "hold-kill")
        {
            return;
        }

        Status s = _context!.Objects.PendOperation(ref info, _ended, out IPendedOperation? held);
        _ = _context.ReportEvent("held", "hold " + held?.Id + ": " + s + ", " + held?.State, info.RequesterProcessId, null);
    }

    private static string CommandOf(int pid)
    {
        try
        {
            return File.ReadAllText("/proc/" + pid.ToString(System.Globalization.CultureInfo.InvariantCulture) + "/comm").TrimEnd('\n');
        }
        catch (IOException)
        {
            return "";
        }
    }

    private PreOperationStatus Hold(ref FileOperation op)
    {
        if (!op.Path.EndsWith("/hold-me", StringComparison.Ordinal))
        {
            return PreOperationStatus.SuccessNoCallback;
        }

        Status s = _context!.Files.PendPreOperation(ref op, _ended, out IPendedOperation? held);
        _ = _context.ReportEvent("held", "hold " + held?.Id + ": " + s + ", " + held?.State, op.RequesterProcessId, op.Path);
        return s.IsSuccess ? PreOperationStatus.Pending : PreOperationStatus.SuccessNoCallback;
    }

    /// <inheritdoc/>
    public void Unload()
    {
    }
}

/// <summary>
/// Package <c>context-probe</c>: a minifilter that keeps a context of its own on a file and tries to read another
/// filter's. On each post-create of a file named <c>probe-me</c> it finds its context (a counter object it set on the
/// first open) and counts the open in it, reporting <c>context N</c>; asks for the file's context under a cookie that is
/// not its own and reports <c>forged STATUS</c> (the kernel must refuse it); and appends a line to the file
/// <c>probe-log</c> beside it through <see cref="IFilterManager.OpenFile(CallbackCookie, string, FileAccess, out Stream?)"/>
/// for writing. Run isolated, the counter is the host's own object and the stream the kernel's.
/// </summary>
public sealed class ContextProbeDriver : IDriver
{
    private IDriverContext? _context;
    private CallbackCookie _filter;

    /// <inheritdoc/>
    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        return context.Files.RegisterFilter(new FilterRegistration
        {
            Name = "context-probe",
            Altitude = "388100",
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PostOperation = Probe }],
        }, out _filter);
    }

    private void Probe(ref FileOperation op)
    {
        if (!op.Path.EndsWith("/probe-me", StringComparison.Ordinal) || op.Status.IsError)
        {
            return;
        }

        IFilterManager files = _context!.Files;
        if (files.GetFileContext(_filter, op.File, out object? found).IsError || found is not Counter counter)
        {
            counter = new Counter();
            _ = files.SetFileContext(_filter, op.File, counter);
        }

        int n = Interlocked.Increment(ref counter.Opens);
        _ = _context.ReportEvent("context", "context " + n, op.RequesterProcessId, op.Path);
        _ = _context.ReportEvent("forged", "forged " + files.GetFileContext(new CallbackCookie(_filter.Value + 1), op.File, out _).Name, op.RequesterProcessId, op.Path);

        // Another driver's hold, by its id (ids are small and sequential): a handle of its own making must not complete
        // it, in the kernel or across the isolation boundary.
        Status stolen = files.CompletePendedPreOperation(new ForgedHold(1), PreOperationStatus.SuccessNoCallback, Status.Success, null);
        _ = _context.ReportEvent("forged-hold", "forged-hold " + stolen.Name, op.RequesterProcessId, op.Path);

        string log = Path.Combine(Path.GetDirectoryName(op.Path)!, "probe-log");
        Status s = files.OpenFile(_filter, log, FileAccess.Write, out Stream? stream);
        if (s.IsSuccess)
        {
            using (stream)
            {
                stream!.Seek(0, SeekOrigin.End);
                stream.Write(System.Text.Encoding.UTF8.GetBytes("open " + n + " of probe-me\n"));
            }
        }

        _ = _context.ReportEvent("log", "log " + s.Name, op.RequesterProcessId, log);
    }

    /// <inheritdoc/>
    public void Unload()
    {
    }

    private sealed class Counter
    {
        public int Opens;
    }

    /// <summary>A completion handle made up by the driver, naming a hold by id.</summary>
    private sealed class ForgedHold(long id) : IPendedOperation
    {
        public long Id { get; } = id;

        public PendedOperationKind Kind => PendedOperationKind.FilePreOperation;

        public long Deadline => Environment.TickCount64 + 60_000;

        public TimeSpan Remaining => TimeSpan.FromMinutes(1);

        public int RequesterProcessId => 0;

        public int RequesterThreadId => 0;

        public CallbackCookie Registration => default;

        public PendedOperationState State => PendedOperationState.Held;
    }
}
