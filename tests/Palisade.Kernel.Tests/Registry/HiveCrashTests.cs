// A real writer process (Palisade.HiveCrashWriter) is killed with SIGKILL in the middle of a stream of writes, after
// a chosen number of acknowledgements read from its stdout; the hive must then reopen with every acknowledged write
// present and exact, and verify clean. The writer's small compaction threshold means kills also land in compactions.
using System.Buffers.Binary;
using System.Globalization;
using Palisade.Api;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Tests.Registry;

public sealed class HiveCrashTests : IDisposable
{
    private readonly TempHive _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(11)]
    [InlineData(23)]
    [InlineData(42)]
    [InlineData(1009)]
    public void A_writer_killed_mid_stream_leaves_every_acknowledged_write_in_a_clean_hive(int seed)
    {
        int killAfter = new Random(seed).Next(1, 3000);

        int acknowledged = RunWriterAndKill(killAfter, powerLoss: false);

        AssertEveryAcknowledgedWriteSurvived(acknowledged, $"seed {seed}, killed after {killAfter} acknowledgements");
    }

    [Fact]
    public void A_hive_survives_repeated_kills_of_its_writer()
    {
        var random = new Random(7);
        for (int round = 0; round < 3; round++)
        {
            int killAfter = random.Next(1, 2000);

            // Each run starts again from operation 0, rewriting the same values with the same data.
            int acknowledged = RunWriterAndKill(killAfter, powerLoss: false);

            AssertEveryAcknowledgedWriteSurvived(acknowledged, $"round {round}, killed after {killAfter} acknowledgements");
        }
    }

    [Fact]
    public void A_writer_with_power_loss_durability_killed_mid_stream_leaves_every_acknowledged_write()
    {
        int acknowledged = RunWriterAndKill(150, powerLoss: true);

        AssertEveryAcknowledgedWriteSurvived(acknowledged, "power-loss durability, killed after 150 acknowledgements");
    }

    /// <summary>Starts the writer, reads <paramref name="killAfter"/> acknowledgements, sends SIGKILL, waits for it.</summary>
    private int RunWriterAndKill(int killAfter, bool powerLoss)
    {
        using var writer = new CrashWriterProcess(_temp.Path, powerLoss);
        writer.WaitForAcknowledgements(killAfter);
        writer.Kill();

        Assert.Equal(CrashWriterProcess.KilledBySigkill, writer.ExitCode);
        return writer.Acknowledged;
    }

    private void AssertEveryAcknowledgedWriteSurvived(int acknowledged, string context)
    {
        Status status = RegistryManager.Open(_temp.Path, null, out RegistryManager? registry);
        Assert.True(status.IsSuccess, $"{context}: reopening the hive returned {status}");
        using (registry)
        {
            for (int i = 0; i < acknowledged; i++)
            {
                status = registry!.QueryValue(CrashStream.KeyPath(i), CrashStream.ValueName(i), out RegistryValueType type, out ReadOnlyMemory<byte> data);
                Assert.True(status.IsSuccess, $"{context}: acknowledged write {i} is missing ({status})");
                Assert.True(type == RegistryValueType.Binary && data.Span.SequenceEqual(CrashStream.Data(i)), $"{context}: write {i} has wrong data");
            }

            // Writes done after the last acknowledgement read may be there too; whatever is there must be exact.
            var values = new List<RegistryValueInfo>();
            for (int k = 0; k < 16; k++)
            {
                registry!.EnumerateValues(CrashStream.KeyPath(k), values);
                foreach (RegistryValueInfo value in values)
                {
                    int i = int.Parse(value.Name.AsSpan(1), CultureInfo.InvariantCulture);
                    Assert.True(value.Data.Span.SequenceEqual(CrashStream.Data(i)), $"{context}: unacknowledged write {i} is present with wrong data");
                }
            }

            status = registry!.QueryValue(CrashStream.RootKey, CrashStream.LatestName, out _, out ReadOnlyMemory<byte> latest);
            Assert.True(status.IsSuccess, $"{context}: Latest is missing ({status})");
            Assert.True(BinaryPrimitives.ReadInt64LittleEndian(latest.Span) >= acknowledged - 1, $"{context}: Latest is older than the last acknowledged write");

            HiveVerification verification = registry.Verify();
            Assert.True(verification.IsClean, $"{context}: the reopened hive does not verify clean: {verification}");
        }
    }
}
