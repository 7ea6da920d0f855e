using BenchmarkDotNet.Attributes;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Drivers.Verification;

namespace Palisade.Benchmarks;

/// <summary>
/// What the driver verifier costs at load, in steady state (the verifier's own code already compiled): one
/// <see cref="DriverVerifier.Verify"/> of a sample driver's package from drivers/out (drivers/build.sh), which builds a
/// MetadataLoadContext over the package, the API and the base library and checks every method of the package.
/// </summary>
[MemoryDiagnoser]
public class VerifierBenchmarks
{
    private DriverPackage _package = null!;

    [Params("antivirus", "firewall", "appcontrol", "selfprotect")]
    public string Driver { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        string directory = Path.Combine(RepositoryRoot(), "drivers", "out", Driver);
        if (!DriverPackage.TryRead(directory, out DriverPackage? package, out string? error))
        {
            throw new InvalidOperationException($"{error} (run drivers/build.sh first)");
        }

        _package = package;
    }

    [Benchmark]
    public int Verify() => DriverVerifier.Verify(_package).Findings.Count;

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Palisade.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("run the benchmarks from inside the repository");
    }
}
