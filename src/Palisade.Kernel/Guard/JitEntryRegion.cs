using System.Runtime.CompilerServices;

namespace Palisade.Kernel.Guard;

/// <summary>
/// The JIT's compile entry: the vtable pointer of libclrjit.so's ICorJitCompiler object, the compileMethod slot
/// (vtable slot 0) and the first bytes of compileMethod itself. Hooking that slot is how patching libraries make
/// every method compiled later pass through them, so a change here precedes every other patch.
/// </summary>
internal sealed class JitEntryRegion : GuardedRegion
{
    private readonly nint _jit;
    private readonly nint _vtable;
    private readonly nint _compileMethod;

    internal JitEntryRegion()
        : base("ICorJitCompiler::compileMethod", GuardRegionType.JitCompileEntry)
    {
        _jit = NativeCode.GetJitCompiler();
        _vtable = NativeCode.ReadPointer(_jit);
        _compileMethod = NativeCode.ReadPointer(_vtable);
    }

    /// <summary>Address of the compileMethod slot (vtable slot 0).</summary>
    internal nint SlotAddress => _vtable;

    internal override ulong Address => (ulong)_vtable;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal override void AppendDigest(ref GuardHasher hasher)
    {
        hasher.Add((ulong)NativeCode.ReadPointer(_jit));
        hasher.Add((ulong)NativeCode.ReadPointer(_vtable));
        hasher.Add(NativeCode.View(_compileMethod, NativeCode.BodyPrefixLength));
    }

    internal override IReadOnlyList<RegionEvidence> CaptureEvidence() =>
    [
        new RegionEvidence("vtable", EvidenceKind.Pointer, (ulong)_jit, BitConverter.GetBytes((ulong)NativeCode.ReadPointer(_jit))),
        new RegionEvidence("compileMethod slot", EvidenceKind.Pointer, (ulong)_vtable, BitConverter.GetBytes((ulong)NativeCode.ReadPointer(_vtable))),
        new RegionEvidence("compileMethod body", EvidenceKind.Code, (ulong)_compileMethod, NativeCode.View(_compileMethod, NativeCode.BodyPrefixLength).ToArray()),
    ];
}
