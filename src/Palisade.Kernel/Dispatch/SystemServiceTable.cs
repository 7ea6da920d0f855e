using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Palisade.Api;

namespace Palisade.Kernel.Dispatch;

/// <summary>
/// The system service table (KiServiceTable): native function pointers to the services, in a block of native
/// memory, at slots drawn at random at boot. Every service call goes through it; the guard protects the block.
/// </summary>
internal sealed unsafe class SystemServiceTable : IDisposable
{
    private readonly nint* _table;
    private readonly int* _slotOf;

    /// <summary>Set by <see cref="Dispose"/>: a call made after it (a host thread still reporting) gets InvalidDeviceState.</summary>
    private volatile bool _closed;

    public SystemServiceTable()
    {
        Count = Enum.GetValues<SystemService>().Length;
        _table = (nint*)NativeMemory.AllocZeroed((nuint)(Count * sizeof(nint)));
        _slotOf = (int*)NativeMemory.AllocZeroed((nuint)(Count * sizeof(int)));

        int[] slots = new int[Count];
        for (int i = 0; i < Count; i++)
        {
            slots[i] = i;
        }

        RandomNumberGenerator.Shuffle(slots.AsSpan());
        for (int i = 0; i < Count; i++)
        {
            _slotOf[i] = slots[i];
            _table[slots[i]] = SystemServices.Address((SystemService)i);
        }
    }

    public int Count { get; }

    /// <summary>The table block (function pointers), for the guard.</summary>
    public nint TableAddress => (nint)_table;

    public int TableLength => Count * sizeof(nint);

    /// <summary>The slot map block (service → slot), for the guard.</summary>
    public nint SlotMapAddress => (nint)_slotOf;

    public int SlotMapLength => Count * sizeof(int);

    /// <summary>The slot a service occupies in this boot.</summary>
    public int SlotOf(SystemService service) => _slotOf[(int)service];

    /// <summary>The entry currently in a service's slot.</summary>
    public nint EntryOf(SystemService service) => _table[_slotOf[(int)service]];

    /// <summary>The system call entry: calls the service through its slot.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public Status Call(PalisadeKernel kernel, SystemService service, ref ServiceFrame frame)
    {
        uint index = (uint)service;
        if (index >= (uint)Count)
        {
            return Status.InvalidParameter;
        }

        if (_closed)
        {
            return Status.InvalidDeviceState;
        }

        return ((delegate*<PalisadeKernel, ref ServiceFrame, Status>)_table[_slotOf[index]])(kernel, ref frame);
    }

    /// <summary>
    /// Closes the table: from now on every call is refused with <see cref="Status.InvalidDeviceState"/>. The block stays
    /// allocated until the table is collected, so a call that passed the check just before the close (another thread of
    /// the host, such as the exit watcher, still reporting while the kernel shuts down) reads valid memory.
    /// </summary>
    public void Dispose() => _closed = true;

    ~SystemServiceTable()
    {
        NativeMemory.Free(_table);
        NativeMemory.Free(_slotOf);
    }
}
