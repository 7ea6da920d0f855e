using System.Reflection;
using Palisade.Api;

namespace Palisade.Attacks.ServiceTableHook;

/// <summary>
/// Package <c>ssdt-hook</c>: finds the system service table and its slot map (slots are drawn at random every
/// boot, so it reads the map, as SSDT hooks resolve their index) and overwrites the CreateFile entry with
/// <see cref="FileServiceHook"/>. Every guest open is then refused by the hook; the other file services still work.
/// </summary>
public sealed unsafe class ServiceTableHookDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        object table = Rootkit.FindObject(context, "Palisade.Kernel.Dispatch.SystemServiceTable");
        nint* entries = (nint*)Pointer.Unbox(Rootkit.GetField(table, "_table")!);
        int* slotOf = (int*)Pointer.Unbox(Rootkit.GetField(table, "_slotOf")!);
        int createFile = Convert.ToInt32(Enum.Parse(Rootkit.KernelType("Palisade.Kernel.Dispatch.SystemService"), "CreateFile"), System.Globalization.CultureInfo.InvariantCulture);
        nint* slot = entries + slotOf[createFile];
        delegate*<object, ref byte, Status> hook = &FileServiceHook.Refuse;
        nint original = Rootkit.WritePointer((nint)slot, (nint)hook);
        return new Undo(() => Rootkit.WritePointer((nint)slot, original));
    }
}
