// The hive on disk: what survives a reopen, the single-writer lock, torn tails, corruption and compaction.
using System.Buffers.Binary;
using Palisade.Api;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Tests.Registry;

public sealed class HivePersistenceTests : IDisposable
{
    private const string Software = @"\Registry\Machine\Software";
    private readonly TempHive _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void A_reopened_hive_has_every_key_and_value_as_last_written()
    {
        using (RegistryManager registry = Open())
        {
            registry.CreateKey(Software + @"\Vendor\Old", out _);
            registry.CreateKey(Software + @"\Gone", out _);
            registry.SetValue(Software + @"\Vendor", "Name", RegistryValueType.String, RegistryData.FromString("Contoso"));
            registry.SetValue(Software + @"\Vendor", "Name", RegistryValueType.String, RegistryData.FromString("Fabrikam"));
            registry.SetValue(Software + @"\Vendor", "Temp", RegistryValueType.DWord, RegistryData.FromDWord(1));
            registry.DeleteValue(Software + @"\Vendor", "Temp");
            registry.RenameKey(Software + @"\Vendor\Old", "New");
            registry.DeleteKey(Software + @"\Gone");
        }

        using RegistryManager reopened = Open();
        var names = new List<string>();

        Assert.Equal(Status.Success, reopened.QueryValue(Software + @"\Vendor", "Name", out _, out ReadOnlyMemory<byte> name));
        Assert.Equal("Fabrikam", RegistryData.ToString(name.Span));
        Assert.Equal(Status.ObjectNameNotFound, reopened.QueryValue(Software + @"\Vendor", "Temp", out _, out _));
        reopened.EnumerateSubkeys(Software + @"\Vendor", names);
        Assert.Equal(["New"], names);
        Assert.Equal(Status.ObjectNameNotFound, reopened.OpenKey(Software + @"\Gone"));
        Assert.True(reopened.Verify().IsClean);
    }

    [Fact]
    public void Keys_created_after_a_reopen_do_not_reuse_the_ids_of_earlier_keys()
    {
        using (RegistryManager registry = Open())
        {
            registry.CreateKey(Software + @"\First", out _);
        }

        using (RegistryManager registry = Open())
        {
            registry.CreateKey(Software + @"\Second", out _);
        }

        using RegistryManager reopened = Open();
        Assert.Equal(Status.Success, reopened.OpenKey(Software + @"\First"));
        Assert.Equal(Status.Success, reopened.OpenKey(Software + @"\Second"));
    }

    [Fact]
    public void A_second_open_of_a_hive_in_use_is_refused_with_SharingViolation()
    {
        using RegistryManager registry = Open();

        Assert.Equal(Status.SharingViolation, RegistryManager.Open(_temp.Path, null, out RegistryManager? second));
        Assert.Null(second);
    }

    [Fact]
    public void A_hive_can_be_opened_again_once_its_manager_is_disposed()
    {
        Open().Dispose();

        Assert.Equal(Status.Success, RegistryManager.Open(_temp.Path, null, out RegistryManager? again));
        again!.Dispose();
    }

    [Fact]
    public void A_hive_in_a_missing_directory_returns_ObjectPathNotFound()
    {
        string path = Path.Combine(_temp.Directory, "missing", "machine.hive");

        Assert.Equal(Status.ObjectPathNotFound, RegistryManager.Open(path, null, out _));
    }

    [Fact]
    public void Invalid_options_are_refused_with_InvalidParameter()
    {
        var options = new HiveOptions { CompactionThreshold = 10 };

        Assert.Equal(Status.InvalidParameter, RegistryManager.Open(_temp.Path, options, out _));
    }

    [Fact]
    public void A_torn_last_record_is_discarded_and_the_writes_before_it_kept()
    {
        WriteNumbers(3);
        long length = new FileInfo(_temp.Path).Length;
        using (FileStream file = File.Open(_temp.Path, FileMode.Open))
        {
            file.SetLength(length - 3);
        }

        using RegistryManager reopened = Open();

        Assert.Equal(Status.Success, reopened.QueryValue(Software, "N1", out _, out _));
        Assert.Equal(Status.ObjectNameNotFound, reopened.QueryValue(Software, "N2", out _, out _));
        Assert.True(reopened.Recovery.DiscardedBytes > 0);
    }

    [Fact]
    public void A_torn_tail_is_cut_from_the_file_so_the_hive_verifies_clean_after_reopening()
    {
        WriteNumbers(3);
        long length = new FileInfo(_temp.Path).Length;
        using (FileStream file = File.Open(_temp.Path, FileMode.Open))
        {
            file.SetLength(length - 3);
        }

        Assert.False(Hive.VerifyFile(_temp.Path).IsClean);
        Open().Dispose();

        Assert.True(Hive.VerifyFile(_temp.Path).IsClean);
    }

    [Fact]
    public void Garbage_appended_after_the_last_record_is_discarded()
    {
        WriteNumbers(2);
        byte[] garbage = new byte[777];
        new Random(17).NextBytes(garbage);
        AppendToHive(garbage);

        using RegistryManager reopened = Open();

        Assert.Equal(777, reopened.Recovery.DiscardedBytes);
        Assert.Equal(Status.Success, reopened.QueryValue(Software, "N1", out _, out ReadOnlyMemory<byte> data));
        Assert.Equal(RegistryData.FromDWord(1), data.ToArray());
        Assert.True(reopened.Verify().IsClean);
    }

    [Fact]
    public void A_zero_filled_tail_as_left_by_a_power_loss_is_discarded()
    {
        WriteNumbers(2);
        AppendToHive(new byte[4096]);

        using RegistryManager reopened = Open();

        Assert.Equal(4096, reopened.Recovery.DiscardedBytes);
        Assert.Equal(Status.Success, reopened.QueryValue(Software, "N1", out _, out _));
    }

    [Fact]
    public void Writes_after_a_discarded_tail_survive_the_next_reopen()
    {
        WriteNumbers(2);
        AppendToHive([1, 2, 3, 4, 5, 6, 7, 8, 9]);
        using (RegistryManager registry = Open())
        {
            registry.SetValue(Software, "After", RegistryValueType.DWord, RegistryData.FromDWord(9));
        }

        using RegistryManager reopened = Open();

        Assert.Equal(Status.Success, reopened.QueryValue(Software, "After", out _, out _));
        Assert.Equal(0, reopened.Recovery.DiscardedBytes);
    }

    [Fact]
    public void A_hive_with_a_damaged_header_is_refused_with_RegistryCorrupt()
    {
        WriteNumbers(1);
        using (FileStream file = File.Open(_temp.Path, FileMode.Open))
        {
            file.WriteByte((byte)'X');
        }

        Assert.Equal(Status.RegistryCorrupt, RegistryManager.Open(_temp.Path, null, out _));
    }

    [Fact]
    public void A_checksummed_record_that_does_not_fit_the_tree_is_refused_with_RegistryCorrupt()
    {
        WriteNumbers(1);

        // A well-framed DeleteKey of a key id that was never created: not a torn write, a damaged hive.
        byte[] record = new byte[HiveFormat.FrameSize + 9];
        record[HiveFormat.FrameSize] = (byte)HiveRecordKind.DeleteKey;
        BinaryPrimitives.WriteUInt64LittleEndian(record.AsSpan(HiveFormat.FrameSize + 1), 999_999);
        AppendToHive(HiveFormat.Seal(record, 9).ToArray());

        Assert.Equal(Status.RegistryCorrupt, RegistryManager.Open(_temp.Path, null, out _));
        Assert.Equal(Status.RegistryCorrupt, Hive.VerifyFile(_temp.Path).Status);
    }

    [Fact]
    public void Compaction_keeps_the_content_and_shrinks_the_log()
    {
        using RegistryManager registry = Open();
        registry.CreateKey(Software, out _);
        for (uint i = 0; i < 1000; i++)
        {
            registry.SetValue(Software, "Counter", RegistryValueType.DWord, RegistryData.FromDWord(i));
        }

        long before = new FileInfo(_temp.Path).Length;

        Assert.Equal(Status.Success, registry.Compact());

        Assert.True(new FileInfo(_temp.Path).Length < before / 10);
        Assert.True(registry.Verify().IsClean);
        Assert.Equal(Status.Success, registry.QueryValue(Software, "Counter", out _, out ReadOnlyMemory<byte> data));
        Assert.Equal(RegistryData.FromDWord(999), data.ToArray());
    }

    [Fact]
    public void Writes_after_a_compaction_go_to_the_compacted_hive()
    {
        using (RegistryManager registry = Open())
        {
            registry.CreateKey(Software + @"\Before", out _);
            registry.Compact();
            registry.CreateKey(Software + @"\After", out _);
        }

        using RegistryManager reopened = Open();

        Assert.Equal(Status.Success, reopened.OpenKey(Software + @"\Before"));
        Assert.Equal(Status.Success, reopened.OpenKey(Software + @"\After"));
    }

    [Fact]
    public void The_log_is_compacted_on_its_own_once_past_the_threshold()
    {
        var options = new HiveOptions { CompactionThreshold = 16 * 1024 };
        using RegistryManager registry = Open(options);
        registry.CreateKey(Software, out _);
        byte[] data = new byte[1000];
        for (int i = 0; i < 500; i++)
        {
            registry.SetValue(Software, "Blob", RegistryValueType.Binary, data);
        }

        // 500 KB were written; without compaction the log would hold all of it.
        Assert.True(new FileInfo(_temp.Path).Length < 64 * 1024);
        Assert.True(registry.Verify().IsClean);
    }

    [Fact]
    public void A_compaction_file_left_by_a_crash_is_ignored_and_removed()
    {
        WriteNumbers(2);
        File.WriteAllBytes(_temp.Path + ".compact", [1, 2, 3]);

        using RegistryManager reopened = Open();

        Assert.Equal(Status.Success, reopened.QueryValue(Software, "N1", out _, out _));
        Assert.False(File.Exists(_temp.Path + ".compact"));
    }

    [Fact]
    public void Writes_acknowledged_with_power_loss_durability_read_back_after_reopening()
    {
        var options = new HiveOptions { Durability = HiveDurability.PowerLoss };
        using (RegistryManager registry = Open(options))
        {
            registry.CreateKey(Software, out _);
            registry.SetValue(Software, "Durable", RegistryValueType.QWord, RegistryData.FromQWord(42));
        }

        using RegistryManager reopened = Open(options);

        Assert.Equal(Status.Success, reopened.QueryValue(Software, "Durable", out _, out ReadOnlyMemory<byte> data));
        Assert.Equal(RegistryData.FromQWord(42), data.ToArray());
    }

    [Fact]
    public void Verify_reports_a_hive_file_changed_behind_the_registrys_back()
    {
        using RegistryManager registry = Open();
        registry.SetValue(@"\Registry\Machine", "Mine", RegistryValueType.DWord, RegistryData.FromDWord(1));

        // A well-formed record the registry did not write: the file no longer replays to the tree in memory.
        byte[] record = new byte[64];
        int length = Encode(record.AsSpan(HiveFormat.FrameSize), Hive.MachineId, "Injected");
        AppendToHive(HiveFormat.Seal(record, length).ToArray());

        HiveVerification verification = registry.Verify();

        Assert.Equal(Status.RegistryCorrupt, verification.Status);
    }

    [Fact]
    public void A_new_hive_file_starts_with_a_header_and_verifies_clean()
    {
        Open().Dispose();

        HiveVerification verification = Hive.VerifyFile(_temp.Path);

        Assert.True(verification.IsClean);
        Assert.Equal(HiveFormat.HeaderSize, verification.FileLength);
    }

    private RegistryManager Open(HiveOptions? options = null)
    {
        Status status = RegistryManager.Open(_temp.Path, options, out RegistryManager? registry);
        Assert.Equal(Status.Success, status);
        return registry!;
    }

    /// <summary>Creates the Software key and sets N0..N(count-1), one record each, then closes the hive.</summary>
    private void WriteNumbers(int count)
    {
        using RegistryManager registry = Open();
        registry.CreateKey(Software, out _);
        for (uint i = 0; i < count; i++)
        {
            registry.SetValue(Software, "N" + i, RegistryValueType.DWord, RegistryData.FromDWord(i));
        }
    }

    /// <summary>A SetValue payload: an empty REG_BINARY value of the key with id <paramref name="keyId"/>.</summary>
    private static int Encode(Span<byte> payload, ulong keyId, string name)
    {
        var writer = new HiveRecordWriter(payload);
        writer.WriteByte((byte)HiveRecordKind.SetValue);
        writer.WriteUInt64(keyId);
        writer.WriteUInt32((uint)RegistryValueType.Binary);
        writer.WriteString(name);
        writer.WriteBytes([]);
        return writer.Length;
    }

    private void AppendToHive(byte[] bytes)
    {
        using var file = new FileStream(_temp.Path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        file.Write(bytes);
    }
}
