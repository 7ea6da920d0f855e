using System.Reflection;
using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Guard;
using Palisade.Kernel.Io;

namespace Palisade.Guard.Tests;

/// <summary>
/// A real kernel booted in a temporary home that trusts the development key, put under the guard exactly as
/// <c>palisade run</c> does (<see cref="KernelProtection"/>) but with a fast schedule and a recording sink. Sample
/// drivers, and attacks in the compat flavor, are loaded from their signed packages through the kernel's loader. The
/// protected flavor's loader refuses every attack (the driver verifier), so to prove the guard against code that is
/// inside the kernel process anyway (a verifier escape), <see cref="Inject"/> starts an attack's entry through the
/// kernel's internal StartDriver path, as the loader would have after a successful load. Disposal stops every driver
/// it started (an attack's unload puts the kernel's code and tables back) before the guard and the kernel go.
/// </summary>
internal sealed class AttackBed : IDisposable
{
    private readonly List<DriverObject> _loaded = [];
    private int _guestsStopped;

    internal AttackBed(KernelFlavor flavor)
    {
        Home = Directory.CreateTempSubdirectory("palisade-attack-").FullName;
        TrustStore.ForHome(Home).Add(File.ReadAllText(Path.Combine(Repository.Root, "drivers", "dev-signing-key.pem.pub")), "palisade-dev-ONLY", "tests");
        Kernel = new PalisadeKernel(new KernelOptions(flavor, Home));
        Protection = KernelProtection.Start(Kernel, () => Interlocked.Exchange(ref _guestsStopped, 1), Sink, TestGuard.FastSchedule);
        Files = Directory.CreateTempSubdirectory("palisade-attack-files-").FullName;
    }

    internal string Home { get; }

    internal string Files { get; }

    internal PalisadeKernel Kernel { get; }

    internal KernelProtection Protection { get; }

    internal RecordingSink Sink { get; } = new();

    internal bool GuestsStopped => Volatile.Read(ref _guestsStopped) != 0;

    /// <summary>Loads a signed package from attacks/out or drivers/out; returns the loader's status.</summary>
    internal Status Load(string package, out DriverObject? record, params string[] parameters)
    {
        string directory = Path.Combine(Repository.Root, package.StartsWith("drivers/", StringComparison.Ordinal) ? "" : "attacks/out", package);
        Status s = Kernel.LoadDriverPackage(directory, Parameters(parameters), out record, out string message);
        Assert.True(s.IsSuccess || s == Status.NotFound, $"{package}: {s} {message}");
        if (record is not null && s.IsSuccess)
        {
            _loaded.Add(record);
        }

        return s;
    }

    internal DriverObject Load(string package, params string[] parameters)
    {
        Assert.Equal(Status.Success, Load(package, out DriverObject? record, parameters));
        return record!;
    }

    /// <summary>
    /// Starts an attack from attacks/out in-process, past the loader and its verifier: its assembly is loaded from
    /// the package into a load context of its own, its manifest's entry type instantiated, and the kernel's
    /// StartDriver lists it (with its assembly, so a crash dump can name it) and calls its Load.
    /// </summary>
    internal Status Inject(string package, out DriverObject record, params string[] parameters)
    {
        string directory = Path.Combine(Repository.Root, "attacks", "out", package);
        Assert.True(DriverPackage.TryRead(directory, out DriverPackage? read, out string? error), error);
        Assert.True(DriverManifest.TryParse(read.Find(DriverManifest.FileName)!.Content, out DriverManifest? manifest, out error), error);
        PackageFile main = read.Find(manifest.Assembly)!;
        var context = new DriverLoadContext(manifest.Name, read, new Dictionary<string, PackageFile> { [Path.GetFileNameWithoutExtension(manifest.Assembly)] = main });
        Assembly assembly = context.LoadPackageAssembly(main);
        var entry = (IDriver)Activator.CreateInstance(assembly.GetType(manifest.EntryType, throwOnError: true)!)!;
        record = new DriverObject(manifest.Name, manifest.Vendor, manifest.Version.ToString(), Path.Combine(directory, manifest.Assembly), Convert.ToHexStringLower(main.Sha256))
        {
            Assemblies = [assembly],
        };
        Status s = Kernel.StartDriver(record, entry, Parameters(parameters));
        Assert.True(s.IsSuccess || s == Status.NotFound, $"{package}: {s}");
        if (s.IsSuccess)
        {
            _loaded.Add(record);
        }

        return s;
    }

    internal DriverObject Inject(string package, params string[] parameters)
    {
        Assert.Equal(Status.Success, Inject(package, out DriverObject record, parameters));
        return record;
    }

    private static Dictionary<string, string> Parameters(string[] parameters)
    {
        var values = new Dictionary<string, string>();
        foreach (string p in parameters)
        {
            string[] kv = p.Split('=', 2);
            values[kv[0]] = kv[1];
        }

        return values;
    }

    /// <summary>Sweeps begun by each checking context so far.</summary>
    internal Dictionary<string, long> SweepsNow()
    {
        var sweeps = new Dictionary<string, long>();
        foreach (GuardContext context in Protection.Guard!.Contexts)
        {
            sweeps[context.Name] = context.Sweeps;
        }

        return sweeps;
    }

    /// <summary>A static property of a loaded driver's own type (what its hook counted).</summary>
    internal static long Counter(DriverObject record, string type, string property) =>
        (long)record.Assemblies[0].GetType(type, throwOnError: true)!.GetProperty(property)!.GetValue(null)!;

    /// <summary>Opens a real file through the system service table, as a guest's open does.</summary>
    internal Status Open(string path)
    {
        var fs = new KernelFileSystem { Access = FileAccess.Read };
        var frame = new ServiceFrame
        {
            ProcessId = 100,
            File = new FileOperation
            {
                Kind = FileOperationKind.Create, Path = path, Access = FileAccessRights.Read, Disposition = CreateDisposition.Open,
                RequesterProcessId = 100, File = IdentityOf(path),
            },
            FilePerformer = fs,
        };
        Status s = Kernel.SystemCall(SystemService.CreateFile, ref frame);
        fs.Opened?.Dispose();
        return s;
    }

    /// <summary>Starts an image in a process, as an exec does; returns the process-create verdict.</summary>
    internal Status Exec(int pid, string image)
    {
        var frame = new ServiceFrame
        {
            ProcessId = pid,
            Create = new ProcessCreateInfo { ProcessId = pid, ParentProcessId = 1, CreatorProcessId = pid, ImagePath = image, CommandLine = image, File = IdentityOf(image) },
        };
        return Kernel.SystemCall(SystemService.CreateProcess, ref frame);
    }

    /// <summary>Opens <paramref name="target"/> from <paramref name="requester"/>, keeping the handle, as a ptrace attach does.</summary>
    internal Status OpenProcess(int requester, int target)
    {
        var frame = new ServiceFrame { ProcessId = requester, TargetProcessId = target, DesiredAccess = ProcessAccessRights.QueryLimitedInformation, KeepHandle = true };
        return Kernel.SystemCall(SystemService.OpenProcess, ref frame);
    }

    internal string WriteFile(string name, string content)
    {
        string path = Path.Combine(Files, name);
        File.WriteAllText(path, content);
        return path;
    }

    private static FileIdentity IdentityOf(string path) => TestFiles.IdentityOf(path);

    public void Dispose()
    {
        foreach (DriverObject record in Enumerable.Reverse(_loaded))
        {
            Kernel.StopDriver(record);
        }

        if (Sink.Count > 0)
        {
            Protection.Guard?.WaitForThreads();
        }

        Protection.Dispose();
        Kernel.Dispose();
        Directory.Delete(Home, recursive: true);
        Directory.Delete(Files, recursive: true);
    }
}

/// <summary>Where the repository is, for the packages built into it.</summary>
internal static class Repository
{
    internal static string Root { get; } = Find();

    private static string Find()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Palisade.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("the tests run from inside the repository; Palisade.sln was not found above " + AppContext.BaseDirectory);
    }
}
