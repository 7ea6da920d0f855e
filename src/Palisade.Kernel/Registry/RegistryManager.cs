// The registry manager (the configuration manager of Windows): the registry as the rest of the kernel sees it. It resolves and validates paths,
// enforces the limits and the Windows rules (delete only a key without subkeys, predefined keys are permanent),
// serializes writers, and lets readers run together. Every operation returns a Status; nothing throws for a bad
// argument. Reads come from the in-memory tree; each change is one append to the hive's log.
using Palisade.Api;

namespace Palisade.Kernel.Registry;

/// <summary>What a create did, with the Windows numbers (REG_CREATED_NEW_KEY, REG_OPENED_EXISTING_KEY).</summary>
internal enum KeyDisposition
{
    CreatedNewKey = 1,
    OpenedExistingKey = 2,
}

/// <summary>A value as enumeration returns it. <see cref="Data"/> is the registry's own copy, read-only.</summary>
internal readonly record struct RegistryValueInfo(string Name, RegistryValueType Type, ReadOnlyMemory<byte> Data);

internal sealed class RegistryManager : IRegistryStore
{
    private readonly Hive _hive;
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private bool _disposed;

    private RegistryManager(Hive hive, HiveRecovery recovery)
    {
        _hive = hive;
        Recovery = recovery;
    }

    /// <summary>The full path of the hive file, or null when the registry is volatile.</summary>
    public string? HivePath => _hive.FilePath;

    /// <summary>What opening the hive found (records replayed, torn bytes discarded).</summary>
    public HiveRecovery Recovery { get; }

    /// <summary>
    /// Opens the registry persisted in the hive file at <paramref name="hivePath"/>, creating the file if needed.
    /// </summary>
    /// <param name="hivePath">The hive file. A lock file <c>hivePath.lock</c> is kept beside it.</param>
    /// <param name="options">Durability and compaction; null for <see cref="HiveOptions.Default"/>.</param>
    /// <param name="manager">The opened registry on success; null otherwise.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> (empty path, invalid options);
    /// <see cref="Status.SharingViolation"/> when another process (or another manager in this one) has the hive;
    /// <see cref="Status.RegistryCorrupt"/> when the hive is damaged beyond a torn last record;
    /// <see cref="Status.ObjectPathNotFound"/>, <see cref="Status.AccessDenied"/> or <see cref="Status.RegistryIoFailed"/>
    /// for file-system failures.</returns>
    public static Status Open(string hivePath, HiveOptions? options, out RegistryManager? manager)
    {
        manager = null;
        if (string.IsNullOrEmpty(hivePath))
        {
            return Status.InvalidParameter;
        }

        Status status = Hive.Open(hivePath, options ?? HiveOptions.Default, out Hive? hive, out HiveRecovery recovery);
        if (status.IsSuccess)
        {
            manager = new RegistryManager(hive!, recovery);
        }

        return status;
    }

    /// <summary>A registry held in memory only; its content is lost when the manager is disposed.</summary>
    public static RegistryManager CreateVolatile() => new(Hive.CreateVolatile(), default);

    /// <summary>
    /// Creates the key at <paramref name="path"/>, with any missing parent keys (all in one record: all or none), or
    /// opens it when it exists.
    /// </summary>
    /// <returns><see cref="Status.Success"/> with <paramref name="disposition"/> saying which;
    /// <see cref="Status.ObjectNameInvalid"/> for a malformed path, a name over 255 characters or a depth over 512;
    /// <see cref="Status.RegistryIoFailed"/> when the hive cannot be written (nothing is created);
    /// <see cref="Status.InvalidDeviceState"/> after <see cref="Dispose"/>.</returns>
    public Status CreateKey(ReadOnlySpan<char> path, out KeyDisposition disposition)
    {
        disposition = default;
        Status status = RegistryPath.Validate(path);
        if (status.IsError)
        {
            return status;
        }

        _lock.EnterWriteLock();
        try
        {
            if (_disposed)
            {
                return Status.InvalidDeviceState;
            }

            var components = new RegistryPath.Components(path);
            components.MoveNext();
            KeyNode key = _hive.Root;
            while (components.MoveNext())
            {
                KeyNode? child = key.FindSubkey(components.Current);
                if (child is null)
                {
                    status = _hive.CreateKeys(key, path[components.CurrentStart..], out _);
                    disposition = status.IsSuccess ? KeyDisposition.CreatedNewKey : default;
                    return status;
                }

                key = child;
            }

            disposition = KeyDisposition.OpenedExistingKey;
            return Status.Success;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Checks that the key at <paramref name="path"/> exists.</summary>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.ObjectNameNotFound"/> when the key does not exist;
    /// <see cref="Status.ObjectPathNotFound"/> when a parent does not; <see cref="Status.ObjectNameInvalid"/>.</returns>
    public Status OpenKey(ReadOnlySpan<char> path) => QueryKey(path, out _, out _);

    /// <summary>Counts the subkeys and values of a key.</summary>
    /// <returns>As <see cref="OpenKey"/>.</returns>
    public Status QueryKey(ReadOnlySpan<char> path, out int subkeyCount, out int valueCount)
    {
        subkeyCount = 0;
        valueCount = 0;
        _lock.EnterReadLock();
        try
        {
            Status status = Resolve(path, out KeyNode? key);
            if (status.IsSuccess)
            {
                subkeyCount = key!.SubkeyCount;
                valueCount = key.ValueCount;
            }

            return status;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Deletes a key, which must have no subkeys; its values go with it.</summary>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.KeyHasChildren"/>; <see cref="Status.CannotDelete"/>
    /// for the predefined keys (<c>\Registry</c>, <c>\Registry\Machine</c>, <c>\Registry\User</c>); the statuses of
    /// <see cref="OpenKey"/>; <see cref="Status.RegistryIoFailed"/>.</returns>
    public Status DeleteKey(ReadOnlySpan<char> path)
    {
        _lock.EnterWriteLock();
        try
        {
            Status status = Resolve(path, out KeyNode? key);
            if (status.IsError)
            {
                return status;
            }

            if (key!.Id < Hive.FirstKeyId)
            {
                return Status.CannotDelete;
            }

            return key.SubkeyCount != 0 ? Status.KeyHasChildren : _hive.DeleteKey(key);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Renames a key within its parent; subkeys and values move with it. A rename that changes only the
    /// case is allowed.</summary>
    /// <param name="path">The key.</param>
    /// <param name="newName">The new name: one component, not a path.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.ObjectNameInvalid"/> for an invalid new name;
    /// <see cref="Status.ObjectNameCollision"/> when a sibling has that name; <see cref="Status.AccessDenied"/> for a
    /// predefined key; the statuses of <see cref="OpenKey"/>; <see cref="Status.RegistryIoFailed"/>.</returns>
    public Status RenameKey(ReadOnlySpan<char> path, ReadOnlySpan<char> newName)
    {
        if (!RegistryPath.IsValidKeyName(newName))
        {
            return Status.ObjectNameInvalid;
        }

        _lock.EnterWriteLock();
        try
        {
            Status status = Resolve(path, out KeyNode? key);
            if (status.IsError)
            {
                return status;
            }

            if (key!.Id < Hive.FirstKeyId)
            {
                return Status.AccessDenied;
            }

            KeyNode? sibling = key.Parent!.FindSubkey(newName);
            if (sibling is not null && sibling != key)
            {
                return Status.ObjectNameCollision;
            }

            return newName.SequenceEqual(key.Name) ? Status.Success : _hive.RenameKey(key, newName);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Sets (creates or replaces) a value of a key.</summary>
    /// <param name="path">The key.</param>
    /// <param name="valueName">The value's name; empty for the key's default value.</param>
    /// <param name="type">The value's type.</param>
    /// <param name="data">The data, copied. At most 1 MiB; 4 bytes for REG_DWORD, 8 for REG_QWORD, an even length
    /// for string types.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.ObjectNameInvalid"/> for a value name over 16383
    /// characters or containing NUL; <see cref="Status.InvalidParameter"/> for an unknown type or data that does not
    /// fit the type or the limit; the statuses of <see cref="OpenKey"/>; <see cref="Status.RegistryIoFailed"/>.</returns>
    public Status SetValue(ReadOnlySpan<char> path, ReadOnlySpan<char> valueName, RegistryValueType type, ReadOnlySpan<byte> data)
    {
        if (!RegistryPath.IsValidValueName(valueName))
        {
            return Status.ObjectNameInvalid;
        }

        Status status = RegistryData.Validate(type, data);
        if (status.IsError)
        {
            return status;
        }

        _lock.EnterWriteLock();
        try
        {
            status = Resolve(path, out KeyNode? key);
            return status.IsError ? status : _hive.SetValue(key!, valueName, type, data);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Deletes a value of a key.</summary>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.ObjectNameNotFound"/> when the key has no such value;
    /// the statuses of <see cref="OpenKey"/>; <see cref="Status.RegistryIoFailed"/>.</returns>
    public Status DeleteValue(ReadOnlySpan<char> path, ReadOnlySpan<char> valueName)
    {
        _lock.EnterWriteLock();
        try
        {
            Status status = Resolve(path, out KeyNode? key);
            if (status.IsError)
            {
                return status;
            }

            return key!.TryGetValue(valueName, out _) ? _hive.DeleteValue(key, valueName) : Status.ObjectNameNotFound;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Reads a value. Allocates nothing: <paramref name="data"/> is the registry's own, read-only copy,
    /// which a later set replaces rather than modifies.</summary>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.ObjectNameNotFound"/> when the key has no such value;
    /// the statuses of <see cref="OpenKey"/>.</returns>
    public Status QueryValue(ReadOnlySpan<char> path, ReadOnlySpan<char> valueName, out RegistryValueType type, out ReadOnlyMemory<byte> data)
    {
        type = RegistryValueType.None;
        data = default;
        _lock.EnterReadLock();
        try
        {
            Status status = Resolve(path, out KeyNode? key);
            if (status.IsError)
            {
                return status;
            }

            if (!key!.TryGetValue(valueName, out RegistryValue value))
            {
                return Status.ObjectNameNotFound;
            }

            type = value.Type;
            data = value.Data;
            return Status.Success;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Lists the names of a key's subkeys, sorted without regard to case, into <paramref name="names"/>
    /// (cleared first).</summary>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> for a null list; the statuses of
    /// <see cref="OpenKey"/>.</returns>
    public Status EnumerateSubkeys(ReadOnlySpan<char> path, List<string> names)
    {
        if (names is null)
        {
            return Status.InvalidParameter;
        }

        names.Clear();
        _lock.EnterReadLock();
        try
        {
            Status status = Resolve(path, out KeyNode? key);
            if (status.IsSuccess && key!.Subkeys is { } subkeys)
            {
                foreach (KeyNode child in subkeys)
                {
                    names.Add(child.Name);
                }
            }

            names.Sort(StringComparer.OrdinalIgnoreCase);
            return status;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Lists a key's values, sorted by name without regard to case, into <paramref name="values"/>
    /// (cleared first).</summary>
    /// <returns>As <see cref="EnumerateSubkeys"/>.</returns>
    public Status EnumerateValues(ReadOnlySpan<char> path, List<RegistryValueInfo> values)
    {
        if (values is null)
        {
            return Status.InvalidParameter;
        }

        values.Clear();
        _lock.EnterReadLock();
        try
        {
            Status status = Resolve(path, out KeyNode? key);
            if (status.IsSuccess && key!.Values is { } stored)
            {
                foreach (RegistryValue value in stored)
                {
                    values.Add(new RegistryValueInfo(value.Name, value.Type, value.Data));
                }
            }

            values.Sort(static (a, b) => StringComparer.OrdinalIgnoreCase.Compare(a.Name, b.Name));
            return status;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>
    /// Performs a registry system service once the callbacks let it pass (the kernel's <see cref="IRegistryStore"/>).
    /// A null value name means the default value; enumerations return names only.
    /// </summary>
    /// <returns>The status of the operation, as documented on each method; <see cref="Status.InvalidParameter"/> for
    /// a null request or an unknown operation; <see cref="Status.ObjectNameInvalid"/> for a rename without a name.</returns>
    public Status Perform(RegistryRequest request)
    {
        if (request is null)
        {
            return Status.InvalidParameter;
        }

        string valueName = request.ValueName ?? "";
        switch (request.Operation)
        {
            case RegistryOperation.CreateKey:
                Status created = CreateKey(request.KeyPath, out KeyDisposition disposition);
                request.Created = disposition == KeyDisposition.CreatedNewKey;
                return created;
            case RegistryOperation.OpenKey:
                return OpenKey(request.KeyPath);
            case RegistryOperation.DeleteKey:
                return DeleteKey(request.KeyPath);
            case RegistryOperation.RenameKey:
                return request.NewName is null ? Status.ObjectNameInvalid : RenameKey(request.KeyPath, request.NewName);
            case RegistryOperation.SetValue:
                return SetValue(request.KeyPath, valueName, request.ValueType, request.Data.Span);
            case RegistryOperation.DeleteValue:
                return DeleteValue(request.KeyPath, valueName);
            case RegistryOperation.QueryValue:
                Status queried = QueryValue(request.KeyPath, valueName, out RegistryValueType type, out ReadOnlyMemory<byte> data);
                request.ResultType = type;
                request.ResultData = data;
                return queried;
            case RegistryOperation.EnumerateKey:
                var subkeys = new List<string>();
                Status listed = EnumerateSubkeys(request.KeyPath, subkeys);
                request.Names = subkeys;
                return listed;
            case RegistryOperation.EnumerateValue:
                var values = new List<RegistryValueInfo>();
                Status enumerated = EnumerateValues(request.KeyPath, values);
                var names = new string[values.Count];
                for (int i = 0; i < names.Length; i++)
                {
                    names[i] = values[i].Name;
                }

                request.Names = names;
                return enumerated;
            default:
                return Status.InvalidParameter;
        }
    }

    /// <summary>Makes every acknowledged write durable against power loss (fsync of the hive).</summary>
    /// <returns><see cref="Status.Success"/> or <see cref="Status.RegistryIoFailed"/>.</returns>
    public Status Flush() => UnderWriteLock(static hive => hive.Flush());

    /// <summary>Rewrites the hive's log to its minimum now, instead of waiting for the compaction threshold.</summary>
    /// <returns><see cref="Status.Success"/> or an I/O status (the previous log then stays in use, intact).</returns>
    public Status Compact() => UnderWriteLock(static hive => hive.Compact());

    /// <summary>Checks the hive file: it verifies clean and replays to exactly the tree in memory.</summary>
    public HiveVerification Verify()
    {
        _lock.EnterWriteLock();
        try
        {
            return _disposed ? new HiveVerification(Status.InvalidDeviceState, 0, 0, 0) : _hive.Verify();
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Closes the hive file and releases its lock. Later calls return <see cref="Status.InvalidDeviceState"/>.</summary>
    public void Dispose()
    {
        _lock.EnterWriteLock();
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _hive.Dispose();
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    private Status UnderWriteLock(Func<Hive, Status> operation)
    {
        _lock.EnterWriteLock();
        try
        {
            return _disposed ? Status.InvalidDeviceState : operation(_hive);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Finds a key; called with the lock held.</summary>
    private Status Resolve(ReadOnlySpan<char> path, out KeyNode? key)
    {
        key = null;
        if (_disposed)
        {
            return Status.InvalidDeviceState;
        }

        Status status = RegistryPath.Validate(path);
        if (status.IsError)
        {
            return status;
        }

        var components = new RegistryPath.Components(path);
        components.MoveNext();
        KeyNode node = _hive.Root;
        while (components.MoveNext())
        {
            KeyNode? child = node.FindSubkey(components.Current);
            if (child is null)
            {
                bool last = components.CurrentStart + components.Current.Length == path.Length;
                return last ? Status.ObjectNameNotFound : Status.ObjectPathNotFound;
            }

            node = child;
        }

        key = node;
        return Status.Success;
    }
}
