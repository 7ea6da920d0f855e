using Palisade.Api;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Control;

/// <summary>
/// What the control socket asks of the kernel it serves (the kernel that holds the home's hive): an administrator's
/// registry operation, and an administrator's request to stop the system. The hive's feed to following kernels is the
/// registry's own (<see cref="SharedRegistry.Feed"/>).
/// </summary>
internal interface IControlTarget
{
    /// <summary>Performs a registry operation as a registry system service of the administrator (process 0): the
    /// registry callbacks decide it.</summary>
    Status PerformRegistry(RegistryRequest request);

    /// <summary>
    /// Checks a request to stop the system with bug check 0xE2 MANUALLY_INITIATED_CRASH and, when it can be honoured,
    /// hands back the action that raises it. The control socket answers its client first and then runs the action,
    /// which in production does not return (the bug check's sink ends the process).
    /// </summary>
    /// <param name="requester">Who asks.</param>
    /// <param name="reason">The administrator's reason, "" for none; checked with <see cref="ControlProtocol.IsValidReason"/>.</param>
    /// <param name="raise">The action that raises the bug check, on success; null otherwise.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> for a reason that is too long or
    /// holds control characters; <see cref="Status.NotSupported"/> when this kernel has no bug check facility (it was
    /// not started under <see cref="KernelProtection"/>, or not yet); <see cref="Status.InvalidDeviceState"/> when the
    /// system is already stopping.</returns>
    Status PrepareBugCheck(ControlPeer requester, string reason, out Action? raise);
}
