using Palisade.Api;

namespace Palisade.Kernel.Objects;

/// <summary>One entry of a handle table: the object and the access granted when the handle was made.</summary>
internal readonly record struct HandleEntry(KernelObject Object, ProcessAccessRights GrantedAccess, bool KernelHandle);

/// <summary>A process's handle table. Handle values are multiples of 4, as in Windows.</summary>
internal sealed class HandleTable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, HandleEntry> _entries = [];
    private int _next = 4;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    public int Insert(HandleEntry entry)
    {
        lock (_lock)
        {
            int h = _next;
            _next += 4;
            _entries.Add(h, entry);
            return h;
        }
    }

    public bool TryGet(int handle, out HandleEntry entry)
    {
        lock (_lock)
        {
            return _entries.TryGetValue(handle, out entry);
        }
    }

    public bool Remove(int handle, out HandleEntry entry)
    {
        lock (_lock)
        {
            return _entries.Remove(handle, out entry);
        }
    }

    public void CloseAll()
    {
        HandleEntry[] all;
        lock (_lock)
        {
            all = [.. _entries.Values];
            _entries.Clear();
        }

        foreach (HandleEntry e in all)
        {
            e.Object.Release();
        }
    }
}
