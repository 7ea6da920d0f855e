// A hive: the in-memory key tree and, unless volatile, the log file that makes it persistent.
//
// Every change is encoded as one record, appended to the log with one write, and only then applied to the tree by
// the same code that replays the log at open. What the tree holds is therefore exactly what the log says, and a
// write that fails on disk changes nothing. The caller (RegistryManager) validates an operation before asking
// for it and serializes all calls; a Hive is not thread-safe.
using System.Diagnostics;
using Palisade.Api;

namespace Palisade.Kernel.Registry;

internal sealed class Hive : IDisposable
{
    /// <summary>\Registry. The predefined keys exist in every hive, are never logged, and cannot be deleted or renamed.</summary>
    public const ulong RootId = 1;

    /// <summary>\Registry\Machine.</summary>
    public const ulong MachineId = 2;

    /// <summary>\Registry\User.</summary>
    public const ulong UserId = 3;

    /// <summary>Ids below this are reserved for predefined keys.</summary>
    public const ulong FirstKeyId = 16;

    private const int InitialBufferSize = 64 * 1024;

    private readonly Dictionary<ulong, KeyNode> _byId = [];
    private readonly HiveFile? _file;
    private readonly HiveOptions _options;
    private byte[] _buffer = new byte[InitialBufferSize];
    private ulong _nextId = FirstKeyId;
    private long _compactedLength;

    private Hive(HiveFile? file, HiveOptions options)
    {
        _file = file;
        _options = options;
        Root = new KeyNode(RootId, RegistryPath.RootName, null);
        _byId.Add(RootId, Root);
        AddPredefined(MachineId, "Machine");
        AddPredefined(UserId, "User");
    }

    public KeyNode Root { get; }

    /// <summary>The full path of the hive file, or null for a volatile hive.</summary>
    public string? FilePath => _file?.FilePath;

    /// <summary>Number of keys, predefined ones included.</summary>
    public int KeyCount => _byId.Count;

    /// <summary>Length of the log file (0 for a volatile hive).</summary>
    public long LogLength => _file?.Length ?? 0;

    /// <summary>A hive that lives in memory only (for tests and for a kernel started without a hive file).</summary>
    public static Hive CreateVolatile() => new(null, HiveOptions.Default);

    /// <summary>
    /// Opens (or creates) the hive file at <paramref name="path"/>, replays it, and discards a torn tail.
    /// </summary>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> for invalid options;
    /// <see cref="Status.SharingViolation"/> when the hive is open elsewhere; <see cref="Status.RegistryCorrupt"/>
    /// when the header is bad or a checksummed record does not apply; or an I/O status.</returns>
    public static Status Open(string path, HiveOptions options, out Hive? hive, out HiveRecovery recovery)
    {
        hive = null;
        recovery = default;
        if (!options.IsValid)
        {
            return Status.InvalidParameter;
        }

        Status status = HiveFile.Open(path, options.Durability == HiveDurability.PowerLoss, out HiveFile? file, out byte[] content);
        if (status.IsError)
        {
            return status;
        }

        var opened = new Hive(file, options);
        status = opened.Replay(content, out recovery);
        if (status.IsSuccess && recovery.DiscardedBytes > 0)
        {
            status = file!.Truncate(recovery.ValidLength);
        }

        if (status.IsError)
        {
            opened.Dispose();
            return status;
        }

        opened._compactedLength = recovery.ValidLength;
        hive = opened;
        return Status.Success;
    }

    /// <summary>Checks a hive file: header, every record's checksum, and that every record applies to the tree.</summary>
    public static HiveVerification VerifyFile(string path)
    {
        Status status = HiveFile.ReadContent(path, out byte[] content);
        if (status.IsError)
        {
            return new HiveVerification(status, 0, 0, 0);
        }

        using Hive scratch = CreateVolatile();
        return scratch.Load(content);
    }

    /// <summary>
    /// Checks that the hive file verifies clean and replays to exactly this tree (same keys, ids, names, values).
    /// </summary>
    public HiveVerification Verify()
    {
        if (_file is null)
        {
            return new HiveVerification(Status.Success, 0, 0, 0);
        }

        Status status = HiveFile.ReadContent(_file.FilePath, out byte[] content);
        if (status.IsError)
        {
            return new HiveVerification(status, 0, 0, 0);
        }

        using Hive scratch = CreateVolatile();
        HiveVerification result = scratch.Load(content);
        return result.Status.IsError || SameTree(Root, scratch.Root) ? result : result with { Status = Status.RegistryCorrupt };
    }

    /// <summary>
    /// Creates the keys named by <paramref name="relativePath"/> (components separated by backslashes, already
    /// validated, none existing) under <paramref name="parent"/>, as one record: all of them or none.
    /// </summary>
    public Status CreateKeys(KeyNode parent, ReadOnlySpan<char> relativePath, out KeyNode? leaf)
    {
        leaf = null;
        int count = relativePath.Count('\\') + 1;
        Span<byte> payload = PayloadBuffer(3 + (count * 18) + (relativePath.Length * 2));
        var writer = new HiveRecordWriter(payload);
        writer.WriteByte((byte)HiveRecordKind.CreateKeys);
        writer.WriteUInt16((ushort)count);
        ulong id = _nextId;
        ulong parentId = parent.Id;
        var components = new RegistryPath.Components(relativePath);
        while (components.MoveNext())
        {
            writer.WriteUInt64(id);
            writer.WriteUInt64(parentId);
            writer.WriteString(components.Current);
            parentId = id++;
        }

        Status status = Commit(writer.Length);
        if (status.IsSuccess)
        {
            leaf = _byId[parentId];
        }

        return status;
    }

    public Status DeleteKey(KeyNode key)
    {
        Span<byte> payload = PayloadBuffer(9);
        var writer = new HiveRecordWriter(payload);
        writer.WriteByte((byte)HiveRecordKind.DeleteKey);
        writer.WriteUInt64(key.Id);
        return Commit(writer.Length);
    }

    public Status RenameKey(KeyNode key, ReadOnlySpan<char> newName)
    {
        Span<byte> payload = PayloadBuffer(9 + HiveFormat.StringSize(newName.Length));
        var writer = new HiveRecordWriter(payload);
        writer.WriteByte((byte)HiveRecordKind.RenameKey);
        writer.WriteUInt64(key.Id);
        writer.WriteString(newName);
        return Commit(writer.Length);
    }

    public Status SetValue(KeyNode key, ReadOnlySpan<char> name, RegistryValueType type, ReadOnlySpan<byte> data)
    {
        Span<byte> payload = PayloadBuffer(17 + HiveFormat.StringSize(name.Length) + data.Length);
        int length = EncodeSetValue(payload, key.Id, name, type, data);
        return Commit(length);
    }

    public Status DeleteValue(KeyNode key, ReadOnlySpan<char> name)
    {
        Span<byte> payload = PayloadBuffer(9 + HiveFormat.StringSize(name.Length));
        var writer = new HiveRecordWriter(payload);
        writer.WriteByte((byte)HiveRecordKind.DeleteValue);
        writer.WriteUInt64(key.Id);
        writer.WriteString(name);
        return Commit(writer.Length);
    }

    /// <summary>fsync(2) of the hive file.</summary>
    public Status Flush() => _file?.Flush() ?? Status.Success;

    /// <summary>
    /// Rewrites the log as the shortest sequence of records that rebuilds the tree, beside the hive, then renames it
    /// over the hive. On failure the old log stays in use, complete.
    /// </summary>
    public Status Compact()
    {
        if (_file is null)
        {
            return Status.Success;
        }

        Status status = _file.BeginRewrite(out FileStream? replacement);
        if (status.IsError)
        {
            return status;
        }

        try
        {
            Span<byte> header = stackalloc byte[HiveFormat.HeaderSize];
            HiveFormat.WriteHeader(header);
            replacement!.Write(header);
            WriteTree(replacement);
        }
        catch (IOException)
        {
            _file.AbortRewrite(replacement!);
            return Status.RegistryIoFailed;
        }

        status = _file.CompleteRewrite(replacement);
        _compactedLength = _file.Length;
        return status;
    }

    public void Dispose() => _file?.Dispose();

    private void AddPredefined(ulong id, string name)
    {
        var key = new KeyNode(id, name, Root);
        Root.AddSubkey(key);
        _byId.Add(id, key);
    }

    /// <summary>A buffer for a payload of at most <paramref name="size"/> bytes, after the frame's room.</summary>
    private Span<byte> PayloadBuffer(int size)
    {
        int needed = HiveFormat.FrameSize + size;
        if (_buffer.Length < needed)
        {
            _buffer = new byte[Math.Max(needed, _buffer.Length * 2)];
        }

        return _buffer.AsSpan(HiveFormat.FrameSize, size);
    }

    private static int EncodeSetValue(Span<byte> payload, ulong keyId, ReadOnlySpan<char> name, RegistryValueType type, ReadOnlySpan<byte> data)
    {
        var writer = new HiveRecordWriter(payload);
        writer.WriteByte((byte)HiveRecordKind.SetValue);
        writer.WriteUInt64(keyId);
        writer.WriteUInt32((uint)type);
        writer.WriteString(name);
        writer.WriteBytes(data);
        return writer.Length;
    }

    /// <summary>Seals the payload in the buffer, appends it, then applies it to the tree.</summary>
    private Status Commit(int payloadLength)
    {
        Span<byte> record = HiveFormat.Seal(_buffer, payloadLength);
        if (_file is not null)
        {
            Status written = _file.Append(record);
            if (written.IsError)
            {
                return written;
            }
        }

        Status applied = Apply(record[HiveFormat.FrameSize..]);
        Debug.Assert(applied.IsSuccess, "the registry manager validates every operation before it is logged");
        if (applied.IsError)
        {
            return applied;
        }

        if (_file is not null && _file.Length - _compactedLength > Math.Max(_options.CompactionThreshold, _compactedLength))
        {
            // The write is already acknowledged; a failed compaction leaves the complete log in use and is retried
            // after another threshold's worth of writes.
            if (Compact().IsError)
            {
                _compactedLength = _file.Length;
            }
        }

        return Status.Success;
    }

    private HiveVerification Load(byte[] content)
    {
        Status status = Replay(content, out HiveRecovery recovery);
        return new HiveVerification(status, recovery.RecordCount, recovery.ValidLength, content.Length);
    }

    private Status Replay(ReadOnlySpan<byte> content, out HiveRecovery recovery)
    {
        recovery = default;
        if (!HiveFormat.IsValidHeader(content))
        {
            return Status.RegistryCorrupt;
        }

        int offset = HiveFormat.HeaderSize;
        int records = 0;
        while (HiveFormat.TryReadRecord(content[offset..], out ReadOnlySpan<byte> payload))
        {
            Status status = Apply(payload);
            if (status.IsError)
            {
                recovery = new HiveRecovery(records, offset, content.Length - offset);
                return status;
            }

            offset += HiveFormat.FrameSize + payload.Length;
            records++;
        }

        recovery = new HiveRecovery(records, offset, content.Length - offset);
        return Status.Success;
    }

    /// <summary>Applies one record to the tree; any record that does not fit the tree is corruption.</summary>
    private Status Apply(ReadOnlySpan<byte> payload)
    {
        var reader = new HiveRecordReader(payload);
        if (!reader.TryReadByte(out byte kind))
        {
            return Status.RegistryCorrupt;
        }

        bool ok = (HiveRecordKind)kind switch
        {
            HiveRecordKind.CreateKeys => ApplyCreateKeys(ref reader),
            HiveRecordKind.DeleteKey => ApplyDeleteKey(ref reader),
            HiveRecordKind.RenameKey => ApplyRenameKey(ref reader),
            HiveRecordKind.SetValue => ApplySetValue(ref reader),
            HiveRecordKind.DeleteValue => ApplyDeleteValue(ref reader),
            _ => false,
        };
        return ok && reader.AtEnd ? Status.Success : Status.RegistryCorrupt;
    }

    private bool ApplyCreateKeys(ref HiveRecordReader reader)
    {
        if (!reader.TryReadUInt16(out ushort count) || count == 0)
        {
            return false;
        }

        for (int i = 0; i < count; i++)
        {
            if (!reader.TryReadUInt64(out ulong id) || !reader.TryReadUInt64(out ulong parentId)
                || !reader.TryReadString(out ReadOnlySpan<char> name)
                || id < FirstKeyId || _byId.ContainsKey(id)
                || !_byId.TryGetValue(parentId, out KeyNode? parent)
                || !RegistryPath.IsValidKeyName(name) || parent.FindSubkey(name) is not null
                || parent.Depth >= RegistryLimits.MaxDepth)
            {
                return false;
            }

            var key = new KeyNode(id, name.ToString(), parent);
            parent.AddSubkey(key);
            _byId.Add(id, key);
            _nextId = Math.Max(_nextId, id + 1);
        }

        return true;
    }

    private bool ApplyDeleteKey(ref HiveRecordReader reader)
    {
        if (!reader.TryReadUInt64(out ulong id) || id < FirstKeyId || !_byId.TryGetValue(id, out KeyNode? key)
            || key.SubkeyCount != 0)
        {
            return false;
        }

        key.Parent!.RemoveSubkey(key);
        _byId.Remove(id);
        return true;
    }

    private bool ApplyRenameKey(ref HiveRecordReader reader)
    {
        if (!reader.TryReadUInt64(out ulong id) || !reader.TryReadString(out ReadOnlySpan<char> name)
            || id < FirstKeyId || !_byId.TryGetValue(id, out KeyNode? key) || !RegistryPath.IsValidKeyName(name))
        {
            return false;
        }

        KeyNode? sibling = key.Parent!.FindSubkey(name);
        if (sibling is not null && sibling != key)
        {
            return false;
        }

        key.Rename(name.ToString());
        return true;
    }

    private bool ApplySetValue(ref HiveRecordReader reader)
    {
        if (!reader.TryReadUInt64(out ulong id) || !reader.TryReadUInt32(out uint type)
            || !reader.TryReadString(out ReadOnlySpan<char> name) || !reader.TryReadBytes(out ReadOnlySpan<byte> data)
            || !_byId.TryGetValue(id, out KeyNode? key) || !RegistryPath.IsValidValueName(name)
            || RegistryData.Validate((RegistryValueType)type, data).IsError)
        {
            return false;
        }

        key.SetValue(name, (RegistryValueType)type, data.ToArray());
        return true;
    }

    private bool ApplyDeleteValue(ref HiveRecordReader reader) =>
        reader.TryReadUInt64(out ulong id) && reader.TryReadString(out ReadOnlySpan<char> name)
        && _byId.TryGetValue(id, out KeyNode? key) && key.RemoveValue(name);

    /// <summary>Writes the tree, parents before children, each key followed by its values.</summary>
    private void WriteTree(FileStream destination)
    {
        var pending = new Stack<KeyNode>();
        pending.Push(Root);
        while (pending.TryPop(out KeyNode? key))
        {
            if (key.Id >= FirstKeyId)
            {
                Span<byte> payload = PayloadBuffer(3 + 18 + (key.Name.Length * 2));
                var writer = new HiveRecordWriter(payload);
                writer.WriteByte((byte)HiveRecordKind.CreateKeys);
                writer.WriteUInt16(1);
                writer.WriteUInt64(key.Id);
                writer.WriteUInt64(key.Parent!.Id);
                writer.WriteString(key.Name);
                destination.Write(HiveFormat.Seal(_buffer, writer.Length));
            }

            if (key.Values is { } values)
            {
                foreach (RegistryValue value in values)
                {
                    Span<byte> payload = PayloadBuffer(17 + HiveFormat.StringSize(value.Name.Length) + value.Data.Length);
                    int length = EncodeSetValue(payload, key.Id, value.Name, value.Type, value.Data);
                    destination.Write(HiveFormat.Seal(_buffer, length));
                }
            }

            if (key.Subkeys is { } subkeys)
            {
                foreach (KeyNode child in subkeys)
                {
                    pending.Push(child);
                }
            }
        }
    }

    private static bool SameTree(KeyNode a, KeyNode b)
    {
        if (a.Id != b.Id || !string.Equals(a.Name, b.Name, StringComparison.Ordinal)
            || a.SubkeyCount != b.SubkeyCount || a.ValueCount != b.ValueCount)
        {
            return false;
        }

        if (a.Values is { } values)
        {
            foreach (RegistryValue value in values)
            {
                if (!b.TryGetValue(value.Name, out RegistryValue other) || other.Type != value.Type
                    || !string.Equals(other.Name, value.Name, StringComparison.Ordinal)
                    || !other.Data.AsSpan().SequenceEqual(value.Data))
                {
                    return false;
                }
            }
        }

        if (a.Subkeys is { } subkeys)
        {
            foreach (KeyNode child in subkeys)
            {
                if (b.FindSubkey(child.Name) is not { } otherChild || !SameTree(child, otherChild))
                {
                    return false;
                }
            }
        }

        return true;
    }
}
