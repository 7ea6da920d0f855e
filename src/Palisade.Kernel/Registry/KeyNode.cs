// One key of the in-memory tree. Keys and values are found by name without regard to case and keep the case they
// were created with. Lookups take spans (through the dictionaries' alternate lookup) so reads allocate nothing.
using Palisade.Api;

namespace Palisade.Kernel.Registry;

/// <summary>A value: its name as first written, its type and its data. The data array is never mutated once stored,
/// so it can be handed out as <see cref="ReadOnlyMemory{T}"/> without a copy.</summary>
internal readonly record struct RegistryValue(string Name, RegistryValueType Type, byte[] Data);

internal sealed class KeyNode
{
    private Dictionary<string, KeyNode>? _subkeys;
    private Dictionary<string, RegistryValue>? _values;

    public KeyNode(ulong id, string name, KeyNode? parent)
    {
        Id = id;
        Name = name;
        Parent = parent;
    }

    /// <summary>The key's number in the hive log; stable for the key's life, across renames and compactions.</summary>
    public ulong Id { get; }

    public string Name { get; private set; }

    public KeyNode? Parent { get; private set; }

    public int Depth
    {
        get
        {
            int depth = 0;
            for (KeyNode? k = Parent; k is not null; k = k.Parent)
            {
                depth++;
            }

            return depth;
        }
    }

    public int SubkeyCount => _subkeys?.Count ?? 0;

    public int ValueCount => _values?.Count ?? 0;

    public Dictionary<string, KeyNode>.ValueCollection? Subkeys => _subkeys?.Values;

    public Dictionary<string, RegistryValue>.ValueCollection? Values => _values?.Values;

    public KeyNode? FindSubkey(ReadOnlySpan<char> name)
    {
        if (_subkeys is null)
        {
            return null;
        }

        return _subkeys.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(name, out KeyNode? child) ? child : null;
    }

    public void AddSubkey(KeyNode child)
    {
        _subkeys ??= new Dictionary<string, KeyNode>(StringComparer.OrdinalIgnoreCase);
        _subkeys.Add(child.Name, child);
    }

    public void RemoveSubkey(KeyNode child)
    {
        bool removed = _subkeys is not null && _subkeys.Remove(child.Name);
        System.Diagnostics.Debug.Assert(removed, "a key removes only its own subkeys");
        child.Parent = null;
    }

    /// <summary>Gives the key a new name within its parent; the caller has checked the name is free (or differs
    /// only in case).</summary>
    public void Rename(string newName)
    {
        KeyNode? parent = Parent;
        if (parent?._subkeys is { } siblings)
        {
            siblings.Remove(Name);
            Name = newName;
            siblings.Add(newName, this);
        }
        else
        {
            Name = newName;
        }
    }

    public bool TryGetValue(ReadOnlySpan<char> name, out RegistryValue value)
    {
        if (_values is null)
        {
            value = default;
            return false;
        }

        return _values.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(name, out value);
    }

    /// <summary>Sets a value. Overwriting keeps the name's original case, as Windows does; a new name is allocated
    /// only when the value did not exist.</summary>
    public void SetValue(ReadOnlySpan<char> name, RegistryValueType type, byte[] data)
    {
        _values ??= new Dictionary<string, RegistryValue>(StringComparer.OrdinalIgnoreCase);
        var lookup = _values.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(name, out RegistryValue existing))
        {
            _values[existing.Name] = existing with { Type = type, Data = data };
        }
        else
        {
            string stored = name.ToString();
            _values.Add(stored, new RegistryValue(stored, type, data));
        }
    }

    public bool RemoveValue(ReadOnlySpan<char> name) =>
        _values is not null && _values.GetAlternateLookup<ReadOnlySpan<char>>().Remove(name);
}
