using BenchmarkDotNet.Attributes;
using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Io;

namespace Palisade.Benchmarks;

/// <summary>
/// What one system service call costs in the kernel, with 0, 1, 8 and 64 callbacks registered: a file create through
/// the minifilter frame (pre and post callbacks) and a process create through its callback chain. The file system
/// itself is left out (a performer that does nothing) so the figure is the kernel's own cost.
/// </summary>
[MemoryDiagnoser]
public class DispatchBenchmarks
{
    private PalisadeKernel _kernel = null!;
    private string _home = null!;
    private ServiceFrame _file;
    private ServiceFrame _exec;

    [Params(0, 1, 8, 64)]
    public int Callbacks { get; set; }

    private sealed class NoFileSystem : IFileSystemPerformer
    {
        public Status Perform(ref FileOperation operation)
        {
            operation.File = new FileIdentity(1, 2);
            return Status.Success;
        }

        public void CancelCreate(ref FileOperation operation)
        {
        }

        public Status ReadOpened(long offset, Span<byte> buffer, out int bytesRead)
        {
            bytesRead = 0;
            return Status.Success;
        }

        public Status QueryOpened(Palisade.Kernel.Processes.ProcessTable guests, out FileState state)
        {
            state = default;
            return Status.InvalidDeviceState;
        }
    }

    private sealed class Driver(int callbacks) : IDriver
    {
        public Status Load(IDriverContext context)
        {
            for (int i = 0; i < callbacks; i++)
            {
                context.Files.RegisterFilter(new FilterRegistration
                {
                    Name = "f" + i,
                    Altitude = (1000 + i).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Operations =
                    [
                        new FileOperationRegistration
                        {
                            Kind = FileOperationKind.Create,
                            PreOperation = static (ref FileOperation op) => op.Path.Length > 4096 ? PreOperationStatus.Complete : PreOperationStatus.SuccessWithCallback,
                            PostOperation = static (ref FileOperation op) => { },
                        },
                    ],
                }, out _);
                context.Processes.RegisterProcessCreate(static (in ProcessCreateInfo info) => info.ImagePath.Length > 4096 ? Status.AccessDenied : Status.Success, out _);
            }

            return Status.Success;
        }

        public void Unload()
        {
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        _home = Directory.CreateTempSubdirectory("palisade-bench-").FullName;
        _kernel = new PalisadeKernel(new KernelOptions(KernelFlavor.Protected, _home));
        _kernel.StartDriver(new DriverObject("bench", "bench", "1.0", "", ""), new Driver(Callbacks), new Dictionary<string, string>());
        _file = new ServiceFrame
        {
            ProcessId = 42,
            File = new FileOperation { Kind = FileOperationKind.Create, Path = "/home/user/document.txt", Access = FileAccessRights.Read },
            FilePerformer = new NoFileSystem(),
        };
        _exec = new ServiceFrame
        {
            ProcessId = 42,
            Create = new ProcessCreateInfo { ProcessId = 42, ParentProcessId = 1, ImagePath = "/usr/bin/cat", CommandLine = "cat x" },
        };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _kernel.Dispose();
        Directory.Delete(_home, recursive: true);
    }

    [Benchmark(Description = "file create through the minifilter frame")]
    public Status FileCreate() => _kernel.SystemCall(SystemService.CreateFile, ref _file);

    [Benchmark(Description = "process create through its callback chain")]
    public Status ProcessCreate() => _kernel.SystemCall(SystemService.CreateProcess, ref _exec);
}
