using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Registry;

namespace Palisade.Cli;

/// <summary>Boots a kernel for a verb: its home folder, the persistent registry hive, the flavor and the event sink.</summary>
internal static class KernelBoot
{
    public static string HivePath(string home) => Path.Combine(home, "registry.hive");

    /// <summary>Boots; on failure writes the reason to stderr and returns null.</summary>
    public static PalisadeKernel? Boot(string? home, KernelFlavor flavor, Stream? events = null, bool ownsEvents = false)
    {
        string resolved = home ?? KernelOptions.DefaultHome();
        Directory.CreateDirectory(resolved);
        Status s = ConfigurationManager.Open(HivePath(resolved), null, out ConfigurationManager? registry);
        if (s.IsError || registry is null)
        {
            Console.Error.WriteLine($"palisade: cannot open the registry hive {HivePath(resolved)}: {s.Message} ({s.Name})");
            return null;
        }

        if (flavor == KernelFlavor.Compat)
        {
            Console.Error.WriteLine("palisade: COMPAT FLAVOR: kernel patch protection is OFF and unsigned drivers load. Do not use this flavor to protect anything.");
        }

        return new PalisadeKernel(new KernelOptions(flavor, resolved, events: events, ownsEvents: ownsEvents), registry);
    }
}
