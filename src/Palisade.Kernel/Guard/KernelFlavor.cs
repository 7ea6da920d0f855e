namespace Palisade.Kernel.Guard;

/// <summary>The flavor the kernel boots in, chosen at boot and shown in every dump and banner.</summary>
internal enum KernelFlavor
{
    /// <summary>The guard runs and cannot be turned off; only signed drivers load.</summary>
    Protected,

    /// <summary>No guard and no signature enforcement, so legacy patching drivers still run. Visibly labelled.</summary>
    Compat,
}
