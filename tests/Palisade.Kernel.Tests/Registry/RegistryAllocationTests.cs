// The hot paths: a read is a lookup in the in-memory tree and allocates nothing; a set is one append and allocates
// only the registry's own copy of the data.
using Palisade.Api;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Tests.Registry;

public sealed class RegistryAllocationTests : IDisposable
{
    private const string Key = @"\Registry\Machine\Software\Vendor";
    private const int Calls = 100;
    private readonly TempHive _temp = new();
    private readonly RegistryManager _registry;

    public RegistryAllocationTests()
    {
        Assert.Equal(Status.Success, RegistryManager.Open(_temp.Path, null, out RegistryManager? registry));
        _registry = registry!;
        _registry.CreateKey(Key, out _);
        _registry.SetValue(Key, "Value", RegistryValueType.DWord, RegistryData.FromDWord(1));
    }

    public void Dispose()
    {
        _registry.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public void Querying_a_value_allocates_nothing()
    {
        _registry.QueryValue(Key, "Value", out _, out _);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Calls; i++)
        {
            _registry.QueryValue(Key, "VALUE", out _, out _);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Opening_an_existing_key_allocates_nothing()
    {
        _registry.CreateKey(Key, out _);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Calls; i++)
        {
            _registry.CreateKey(Key, out _);
            _registry.OpenKey(Key);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Overwriting_a_value_in_a_hive_file_allocates_only_the_copy_of_its_data()
    {
        byte[] data = RegistryData.FromDWord(2);
        _registry.SetValue(Key, "Value", RegistryValueType.DWord, data);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Calls; i++)
        {
            _registry.SetValue(Key, "Value", RegistryValueType.DWord, data);
        }

        // A 4-byte array is 32 bytes on x64; anything per call beyond it (strings, boxes, closures) would double this.
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before <= Calls * 32);
    }
}
