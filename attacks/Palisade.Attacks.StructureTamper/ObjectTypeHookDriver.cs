using System.Reflection;
using System.Runtime.CompilerServices;
using Palisade.Api;

namespace Palisade.Attacks.StructureTamper;

/// <summary>
/// Package <c>object-type-hook</c>: replaces the Process object type's open procedure (OBJECT_TYPE's OpenProcedure)
/// with its own, so that every process handle opened in the system passes through this driver instead of the
/// kernel's procedure. Unload puts the kernel's procedure back.
/// </summary>
public sealed unsafe class ObjectTypeHookDriver : AttackDriver
{
    private static long s_opens;

    /// <summary>How many process handle opens the hook has seen.</summary>
    public static long Opens => Interlocked.Read(ref s_opens);

    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        object objects = Rootkit.FindObject(context, "Palisade.Kernel.Objects.ObjectManager");
        object processType = Rootkit.GetProperty(objects, "ProcessType")!;
        nint* procedures = (nint*)Pointer.Unbox(Rootkit.GetField(processType, "_procedures")!);
        delegate*<object, int, void> spy = &Spy;
        nint original = Rootkit.WritePointer((nint)procedures, (nint)spy);
        return new Undo(() => Rootkit.WritePointer((nint)procedures, original));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Spy(object target, int processId) => Interlocked.Increment(ref s_opens);
}
