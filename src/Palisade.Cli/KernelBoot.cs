using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Control;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Registry;

namespace Palisade.Cli;

/// <summary>Boots a kernel for a verb: its home folder, the persistent registry hive, the flavor and the event sink.</summary>
internal static class KernelBoot
{
    /// <summary>
    /// Boots a kernel for <c>palisade run</c>; on failure writes the reason to stderr and returns null. The kernel
    /// takes the home's registry hive and serves its control socket, or, when another run holds the hive, follows
    /// that run's registry (src/Palisade.Kernel/Registry/README.md, "Several kernels on one home").
    /// </summary>
    public static PalisadeKernel? Boot(string? home, KernelFlavor flavor, Stream? events = null, bool ownsEvents = false, Kernel.Events.EventStreamOptions? eventOptions = null)
    {
        string resolved = PalisadeHome.Resolve(home);
        Directory.CreateDirectory(resolved);
        Status s = SharedRegistry.Join(resolved, SharedRegistry.DefaultPatience, out SharedRegistry? registry);
        if (s.IsError || registry is null)
        {
            Console.Error.WriteLine(s == Status.SharingViolation
                ? $"palisade: the registry hive {SharedRegistry.HivePath(resolved)} is held by a process that does not answer on {ControlSocket.PathOf(resolved)}"
                : $"palisade: cannot open the registry hive {SharedRegistry.HivePath(resolved)}: {s.Message} ({s.Name})");
            return null;
        }

        AnnounceFlavor(flavor);
        var kernel = new PalisadeKernel(new KernelOptions(flavor, resolved, events: events, ownsEvents: ownsEvents, eventOptions: eventOptions), registry);
        if (registry.ServeError is { } why)
        {
            Console.Error.WriteLine($"palisade: no control channel ({why}); `palisade reg` cannot reach this run");
        }

        return kernel;
    }

    /// <summary>
    /// The registry for <c>palisade reg</c>: the kernel that holds the hive, through its control socket, when one
    /// runs; otherwise the hive file itself, in a kernel booted for the command. A hive held by a process that is
    /// not listening (a kernel starting, another <c>palisade reg</c>) is waited for, up to
    /// <see cref="SharedRegistry.DefaultPatience"/>. On failure writes the reason to stderr and returns null.
    /// </summary>
    public static RegistrySession? OpenRegistry(string? home)
    {
        string resolved = PalisadeHome.Resolve(home);
        Directory.CreateDirectory(resolved);
        DateTime deadline = DateTime.UtcNow + SharedRegistry.DefaultPatience;
        while (true)
        {
            if (ControlClient.TryConnect(ControlSocket.PathOf(resolved), out ControlClient? client))
            {
                return new RegistrySession(client!, null);
            }

            Status s = RegistryManager.Open(SharedRegistry.HivePath(resolved), null, out RegistryManager? registry);
            if (s.IsSuccess)
            {
                return new RegistrySession(null, new PalisadeKernel(new KernelOptions(KernelFlavor.Protected, resolved), registry));
            }

            if (s != Status.SharingViolation || DateTime.UtcNow >= deadline)
            {
                Console.Error.WriteLine(s == Status.SharingViolation
                    ? $"palisade: the registry hive {SharedRegistry.HivePath(resolved)} is held by a process that does not answer on {ControlSocket.PathOf(resolved)}"
                    : $"palisade: cannot open the registry hive {SharedRegistry.HivePath(resolved)}: {s.Message} ({s.Name})");
                return null;
            }

            Thread.Sleep(20);
        }
    }

    private static void AnnounceFlavor(KernelFlavor flavor)
    {
        if (flavor == KernelFlavor.Compat)
        {
            Console.Error.WriteLine("palisade: COMPAT FLAVOR: kernel patch protection is OFF, drivers' code is not verified and unsigned drivers load. Do not use this flavor to protect anything.");
        }
    }
}

/// <summary>Where <c>palisade reg</c> sends its operations: a running kernel, or a kernel booted on the hive file.</summary>
internal sealed class RegistrySession : IDisposable
{
    private readonly ControlClient? _remote;
    private readonly PalisadeKernel? _local;

    public RegistrySession(ControlClient? remote, PalisadeKernel? local)
    {
        _remote = remote;
        _local = local;
        Client = remote is not null ? new RegistryClient(r => remote.Perform(r, out _)) : new RegistryClient(local!, processId: 0);
    }

    /// <summary>True when a running kernel performs the operations (its registry callbacks decide them).</summary>
    public bool Remote => _remote is not null;

    public RegistryClient Client { get; }

    public void Dispose()
    {
        _remote?.Dispose();
        _local?.Dispose();
    }
}
