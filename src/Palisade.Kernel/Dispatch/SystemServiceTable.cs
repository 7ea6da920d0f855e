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
    private nint* _table;
    private int* _slotOf;

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

        return ((delegate*<PalisadeKernel, ref ServiceFrame, Status>)_table[_slotOf[index]])(kernel, ref frame);
    }

    public void Dispose()
    {
        NativeMemory.Free(_table);
        NativeMemory.Free(_slotOf);
        _table = null;
        _slotOf = null;
    }
}
