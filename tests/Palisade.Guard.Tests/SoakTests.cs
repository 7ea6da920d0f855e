using System.Runtime.CompilerServices;
using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Guard;
using Palisade.Kernel.Io;

namespace Palisade.Guard.Tests;

/// <summary>
/// No false positives: a protected kernel wired exactly as <c>palisade run</c> wires it (<see cref="KernelProtection"/>)
/// goes through heavy legitimate activity — drivers loading and unloading through the API, callback registration
/// churn, mediated file creates through the minifilter frame with real files, process forks and exits, compacting garbage collections, and
/// tiered JIT of code that is not protected — and the guard must never raise a bug check. It runs 60 seconds
/// (PALISADE_SOAK_SECONDS overrides, for bench/guard/soak.sh) with a fast guard schedule so that many sweeps
/// interleave with the churn. It is opt-in: <c>./test.sh --soak</c> runs it (CI does); a plain <c>./test.sh</c> leaves
/// out the tests of trait Category=Soak.
/// </summary>
public sealed class SoakTests
{
    private sealed class ChurnDriver : IDriver
    {
        public Status Load(IDriverContext context)
        {
            Status s = context.Files.RegisterFilter(new FilterRegistration
            {
                Name = "soak",
                Altitude = "320000",
                Operations =
                [
                    new FileOperationRegistration
                    {
                        Kind = FileOperationKind.Create,
                        PreOperation = static (ref FileOperation op) => PreOperationStatus.SuccessWithCallback,
                        PostOperation = static (ref FileOperation op) => { },
                    },
                ],
            }, out _);
            return s.IsError ? s : context.Processes.RegisterProcessCreate(static (in ProcessCreateInfo i) => Status.Success, out _);
        }

        public void Unload()
        {
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static long Unprotected(long x) => (x * 31) ^ (x >> 3);

    [Fact]
    [Trait("Category", "Soak")]
    public void Legitimate_activity_under_a_protected_kernel_never_raises_a_bug_check()
    {
        int seconds = int.TryParse(Environment.GetEnvironmentVariable("PALISADE_SOAK_SECONDS"), out int s) && s > 0 ? s : 60;
        string home = Directory.CreateTempSubdirectory("palisade-soak-").FullName;
        var sink = new RecordingSink();
        try
        {
            using var kernel = new PalisadeKernel(new KernelOptions(KernelFlavor.Protected, home));
            using KernelProtection protection = KernelProtection.Start(kernel, stopGuests: null, sink,
                new GuardOptions { MinInterval = TimeSpan.FromMilliseconds(20), MaxInterval = TimeSpan.FromMilliseconds(80) });
            Assert.NotNull(protection.Guard);
            string file = Path.Combine(home, "data.txt");
            File.WriteAllText(file, "soak");
            long sweepsBefore = protection.Guard!.Contexts.Sum(c => c.Sweeps);

            var stop = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
            long iterations = 0, acc = 0;
            while (DateTime.UtcNow < stop && sink.Count == 0)
            {
                var record = new DriverObject("churn" + (iterations % 4), "soak", "1.0", "", "");
                Assert.Equal(Status.Success, kernel.StartDriver(record, new ChurnDriver(), new Dictionary<string, string>()));
                for (int i = 0; i < 50; i++)
                {
                    var fs = new KernelFileSystem();
                    var frame = new ServiceFrame
                    {
                        ProcessId = 42,
                        File = new FileOperation { Kind = FileOperationKind.Create, Path = file, Access = FileAccessRights.Read },
                        FilePerformer = fs,
                    };
                    Assert.Equal(Status.Success, kernel.SystemCall(SystemService.CreateFile, ref frame));
                    fs.Opened?.Dispose();
                    acc += Unprotected(i + iterations);
                }

                // Process churn through the kernel's system calls: every fork and exit changes the active process
                // list and its index, inside the guard's change window.
                for (int i = 0; i < 20; i++)
                {
                    int child = 10_000 + (int)(iterations % 1000) * 20 + i;
                    var fork = new ServiceFrame { ProcessId = 42, ThreadId = 42, TargetProcessId = child };
                    kernel.SystemCall(SystemService.ForkProcess, ref fork);
                    Assert.NotNull(kernel.ProcessTable.Find(child));
                    var exit = new ServiceFrame { TargetProcessId = child };
                    kernel.SystemCall(SystemService.ExitProcess, ref exit);
                }

                Assert.Equal(Status.Success, kernel.StopDriver(record));
                if (++iterations % 20 == 0)
                {
                    GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                }
            }

            Assert.Equal(0, sink.Count);
            Assert.True(iterations > 10, "the soak did real work");
            Assert.Equal(0, kernel.ProcessTable.Count);
            Assert.True(protection.Guard.Contexts.Sum(c => c.Sweeps) - sweepsBefore > 100, "the guard swept throughout the soak");
            Assert.NotEqual(long.MinValue, acc);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }
}
