using Palisade.Api;

namespace Palisade.Kernel.Registry;

/// <summary>What performs a registry operation once the callbacks let it pass: the persistent hive.</summary>
internal interface IRegistryStore : IDisposable
{
    Status Perform(RegistryRequest request);
}
