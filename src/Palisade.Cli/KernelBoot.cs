using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Registry;

namespace Palisade.Cli;

/// <summary>Boots a kernel for a verb: its home folder, the persistent registry hive, the flavor and the event sink.</summary>
internal static class KernelBoot
{
    public static string HivePath(string home) => Path.Combine(home, "registry.hive");

    /// <summary>
    /// Boots; on failure writes the reason to stderr and returns null. With <paramref name="shareHive"/>, a hive that
    /// another kernel holds (a second <c>palisade run</c>) is opened as a private copy: the hive is an append-only log
    /// whose torn tail is discarded on open, so a copy taken at any moment is consistent. Changes to the copy are not
    /// kept, which stderr says.
    /// </summary>
    public static PalisadeKernel? Boot(string? home, KernelFlavor flavor, Stream? events = null, bool ownsEvents = false, bool shareHive = false)
    {
        string resolved = home ?? KernelOptions.DefaultHome();
        Directory.CreateDirectory(resolved);
        Status s = RegistryManager.Open(HivePath(resolved), null, out RegistryManager? registry);
        string? copy = null;
        if (s == Status.SharingViolation && shareHive)
        {
            copy = Path.Combine(Path.GetTempPath(), "palisade-hive-" + Environment.ProcessId + ".hive");
            File.Copy(HivePath(resolved), copy, overwrite: true);
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                File.Delete(copy);
                File.Delete(copy + ".lock");
            };
            s = RegistryManager.Open(copy, null, out registry);
            Console.Error.WriteLine("palisade: the registry hive is in use by another kernel; this run works on a private copy whose changes are not kept");
        }

        if (s.IsError || registry is null)
        {
            Console.Error.WriteLine($"palisade: cannot open the registry hive {HivePath(resolved)}: {s.Message} ({s.Name})");
            return null;
        }

        if (flavor == KernelFlavor.Compat)
        {
            Console.Error.WriteLine("palisade: COMPAT FLAVOR: kernel patch protection is OFF and unsigned drivers load. Do not use this flavor to protect anything.");
        }

        var kernel = new PalisadeKernel(new KernelOptions(flavor, resolved, events: events, ownsEvents: ownsEvents), registry);
        if (copy is not null)
        {
            // The private copy of the hive is kernel state as much as the hive itself.
            _ = kernel.KernelFiles.Add(copy, Palisade.Kernel.Hosting.KernelFileKind.File);
            _ = kernel.KernelFiles.Add(copy + ".lock", Palisade.Kernel.Hosting.KernelFileKind.File);
        }

        return kernel;
    }
}
