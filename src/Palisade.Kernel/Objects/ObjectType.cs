using System.Runtime.InteropServices;

namespace Palisade.Kernel.Objects;

/// <summary>
/// An object type (OBJECT_TYPE): its name and its procedures. The procedures are kept as native function pointers
/// in a block of native memory, the structure a rootkit overwrites to hook every open or delete of a type; the
/// guard protects the block.
/// </summary>
internal sealed unsafe class ObjectType : IDisposable
{
    /// <summary>Procedure slots: open (a handle is created), close (a handle is closed), delete (last reference).</summary>
    public const int OpenSlot = 0, CloseSlot = 1, DeleteSlot = 2, SlotCount = 3;

    private nint* _procedures;

    public ObjectType(string name, int index,
        delegate*<KernelObject, int, void> open,
        delegate*<KernelObject, int, void> close,
        delegate*<KernelObject, void> delete)
    {
        Name = name;
        Index = index;
        _procedures = (nint*)NativeMemory.AllocZeroed((nuint)(SlotCount * sizeof(nint)));
        _procedures[OpenSlot] = (nint)open;
        _procedures[CloseSlot] = (nint)close;
        _procedures[DeleteSlot] = (nint)delete;
    }

    public string Name { get; }

    public int Index { get; }

    /// <summary>The procedure block, for the guard.</summary>
    public nint ProceduresAddress => (nint)_procedures;

    public int ProceduresLength => SlotCount * sizeof(nint);

    public void InvokeOpen(KernelObject o, int processId) =>
        ((delegate*<KernelObject, int, void>)_procedures[OpenSlot])(o, processId);

    public void InvokeClose(KernelObject o, int processId) =>
        ((delegate*<KernelObject, int, void>)_procedures[CloseSlot])(o, processId);

    public void InvokeDelete(KernelObject o) =>
        ((delegate*<KernelObject, void>)_procedures[DeleteSlot])(o);

    public void Dispose()
    {
        if (_procedures is not null)
        {
            NativeMemory.Free(_procedures);
            _procedures = null;
        }
    }
}
