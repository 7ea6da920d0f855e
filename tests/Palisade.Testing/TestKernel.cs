using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Hosting;
using Palisade.Kernel.Io;

namespace Palisade.Testing;

/// <summary>A driver whose Load is a lambda: the tests' way of registering real callbacks through the real API.</summary>
internal sealed class LambdaDriver(Func<IDriverContext, Status> load, Action? unload = null) : IDriver
{
    public IDriverContext? Context { get; private set; }

    public Status Load(IDriverContext context)
    {
        Context = context;
        return load(context);
    }

    public void Unload() => unload?.Invoke();
}

/// <summary>A booted kernel with a temporary home, disposed with the test.</summary>
internal sealed class TestKernel : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("palisade-test-").FullName;
    private int _drivers;

    public TestKernel(TimeSpan? deadline = null, Stream? events = null, KernelFlavor flavor = KernelFlavor.Protected, Palisade.Kernel.Events.EventStreamOptions? eventOptions = null)
    {
        Kernel = new PalisadeKernel(new KernelOptions(flavor, _home, deadline, events, eventOptions: eventOptions));
    }

    public PalisadeKernel Kernel { get; }

    /// <summary>The hosting surface of the kernel, as a host sees it.</summary>
    public KernelHost Host => Kernel.Host;

    public string Home => _home;

    /// <summary>Starts an in-process driver; returns its context (throws when the load fails, which is a test bug).</summary>
    public IDriverContext Start(Func<IDriverContext, Status> load, string? name = null) => Start(load, out _, name);

    public IDriverContext Start(Func<IDriverContext, Status> load, out DriverObject record, string? name = null)
    {
        var driver = new LambdaDriver(load);
        record = new DriverObject(name ?? "test" + Interlocked.Increment(ref _drivers), "tests", "1.0", "", "");
        Status s = Kernel.StartDriver(record, driver, new Dictionary<string, string>());
        Assert.Equal(Status.Success, s);
        return driver.Context!;
    }

    /// <summary>
    /// Opens a real file as the host's mediator does with the event stream on: the operation's record gathers the
    /// verdicts, and the operation line is written when the open is decided (where the block policy waits).
    /// </summary>
    public Status OpenAndRecord(string path, int pid = 100)
    {
        Palisade.Kernel.Events.OperationRecord? record = Kernel.CurrentRecord;
        record?.Begin(pid, "open");
        record?.Argument("path", path);
        Status s = Open(path, FileAccessRights.Read, pid);
        if (record is not null)
        {
            record.Result = s;
            Kernel.Events.WriteOperation(record);
        }

        return s;
    }

    /// <summary>Opens a real file through the filter manager, as a guest open would; returns the status.</summary>
    public Status Open(string path, FileAccessRights access = FileAccessRights.Read, int pid = 100)
    {
        var fs = new KernelFileSystem();
        var frame = new ServiceFrame
        {
            ProcessId = pid,
            File = new FileOperation { Kind = FileOperationKind.Create, Path = path, Access = access, RequesterProcessId = pid },
            FilePerformer = fs,
        };
        Status s = Kernel.SystemCall(SystemService.CreateFile, ref frame);
        fs.Opened?.Dispose();
        return s;
    }

    public void Dispose()
    {
        Kernel.Dispose();
        if (Directory.Exists(_home))
        {
            Directory.Delete(_home, recursive: true);
        }
    }
}
