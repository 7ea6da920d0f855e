using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.TestDrivers.KernelReferencing;

/// <summary>Reads a kernel-internal value instead of asking the API for it.</summary>
public sealed class KernelReferencingDriver : IDriver
{
    public Status Load(IDriverContext context) =>
        DriverLoader.ApiVersion.Major == 1 ? Status.Success : Status.RevisionMismatch;

    public void Unload()
    {
    }
}
