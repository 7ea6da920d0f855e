// A write that fails on disk (here: a full file system) is refused with RegistryIoFailed and changes nothing, in
// memory or on disk; the hive stays usable.
using Palisade.Api;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Tests.Registry;

public sealed class HiveDiskFullTests
{
    private const string Key = @"\Registry\Machine\Software";
    private const int BlobSize = 64 * 1024;

    [TmpfsFact]
    public void A_write_to_a_full_disk_returns_RegistryIoFailed_and_leaves_no_trace()
    {
        using var disk = new SmallTmpfs(256);
        string hive = Path.Combine(disk.Directory, "machine.hive");
        Assert.Equal(Status.Success, RegistryManager.Open(hive, null, out RegistryManager? registry));
        using (registry)
        {
            int failed = FillUntilAWriteFails(registry!);

            Assert.Equal(Status.ObjectNameNotFound, registry!.QueryValue(Key, "V" + failed, out _, out _));
            Assert.Equal(Status.Success, registry.QueryValue(Key, "V0", out _, out _));
            Assert.True(registry.Verify().IsClean);
        }
    }

    [TmpfsFact]
    public void After_a_failed_write_smaller_writes_succeed_and_survive_a_reopen()
    {
        using var disk = new SmallTmpfs(256);
        string hive = Path.Combine(disk.Directory, "machine.hive");
        Assert.Equal(Status.Success, RegistryManager.Open(hive, null, out RegistryManager? registry));
        using (registry)
        {
            FillUntilAWriteFails(registry!);

            Assert.Equal(Status.Success, registry!.SetValue(Key, "Small", RegistryValueType.DWord, RegistryData.FromDWord(1)));
        }

        Assert.Equal(Status.Success, RegistryManager.Open(hive, null, out RegistryManager? reopened));
        using (reopened)
        {
            Assert.Equal(Status.Success, reopened!.QueryValue(Key, "Small", out _, out _));
            Assert.Equal(0, reopened.Recovery.DiscardedBytes);
        }
    }

    /// <summary>Writes 64 KiB values V0, V1, ... until one fails; returns its number.</summary>
    private static int FillUntilAWriteFails(RegistryManager registry)
    {
        Assert.Equal(Status.Success, registry.CreateKey(Key, out _));
        byte[] blob = new byte[BlobSize];
        for (int i = 0; i < 16; i++)
        {
            Status status = registry.SetValue(Key, "V" + i, RegistryValueType.Binary, blob);
            if (status.IsError)
            {
                Assert.Equal(Status.RegistryIoFailed, status);
                Assert.True(i > 0, "the first 64 KiB value fits on a 256 KiB file system");
                return i;
            }
        }

        Assert.Fail("16 values of 64 KiB fitted on a 256 KiB file system");
        return -1;
    }
}
