// A hive has one writer: a second process is refused while the first holds it, and gets it once the first is gone.
using Palisade.Api;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Tests.Registry;

public sealed class HiveLockTests : IDisposable
{
    private readonly TempHive _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void A_hive_held_by_another_process_is_refused_with_SharingViolation()
    {
        using var writer = new CrashWriterProcess(_temp.Path, powerLoss: false);
        writer.WaitForAcknowledgements(1);

        Assert.Equal(Status.SharingViolation, RegistryManager.Open(_temp.Path, null, out _));
    }

    [Fact]
    public void The_single_writer_lock_holds_when_dotnet_file_locking_is_switched_off()
    {
        using var writer = new CrashWriterProcess(_temp.Path, powerLoss: false, ("DOTNET_SYSTEM_IO_DISABLEFILELOCKING", "1"));
        writer.WaitForAcknowledgements(1);

        Assert.Equal(Status.SharingViolation, RegistryManager.Open(_temp.Path, null, out _));
    }

    [Fact]
    public void A_hive_whose_writer_was_killed_can_be_opened_by_another_process()
    {
        using var writer = new CrashWriterProcess(_temp.Path, powerLoss: false);
        writer.WaitForAcknowledgements(1);
        writer.Kill();

        Assert.Equal(Status.Success, RegistryManager.Open(_temp.Path, null, out RegistryManager? registry));
        registry!.Dispose();
    }
}
