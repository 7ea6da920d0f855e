using System.Runtime.CompilerServices;
using System.Reflection;

namespace Palisade.Kernel.Guard;

/// <summary>
/// The native code of one protected method: the FixupPrecode stub that delegates, reflection and ldftn enter,
/// its data cell (which a stub-only hook swaps), and the entire body, funclets included, as the runtime's code header
/// bounds it (an inline detour may go anywhere in it, not only at its entry). The method must be
/// <c>[MethodImpl(NoInlining | AggressiveOptimization)]</c>: only then is the body compiled once, never re-jitted
/// by tiering, and never copied into callers (see the guard tests' tiering experiment).
/// </summary>
internal sealed class MethodCodeRegion : GuardedRegion
{
    private const MethodImplAttributes Required = MethodImplAttributes.NoInlining | MethodImplAttributes.AggressiveOptimization;

    private readonly MethodCodeLocation _location;

    internal MethodCodeRegion(MethodBase method)
        : this(method, GuardRegionType.KernelFunction)
    {
    }

    internal MethodCodeRegion(MethodBase method, GuardRegionType type)
        : base(NameOf(method), type)
    {
        if ((method.MethodImplementationFlags & Required) != Required)
        {
            throw new ArgumentException(
                $"{Name} must be [MethodImpl(NoInlining | AggressiveOptimization)] to have one stable body.", nameof(method));
        }

        Method = method;
        _location = NativeCode.Locate(method);
    }

    internal MethodBase Method { get; }

    internal MethodCodeLocation Location => _location;

    internal override ulong Address => (ulong)_location.Body;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal override void AppendDigest(ref GuardHasher hasher)
    {
        hasher.Add(NativeCode.View(_location.Stub, NativeCode.FixupPrecodeLength));
        hasher.Add((ulong)NativeCode.ReadPointer(_location.Cell));

        // The body is read at its baseline address, never through the cell: a swapped cell may point anywhere.
        hasher.Add(NativeCode.View(_location.Body, _location.BodyLength));
    }

    internal override IReadOnlyList<RegionEvidence> CaptureEvidence() =>
    [
        new RegionEvidence("stub", EvidenceKind.Code, (ulong)_location.Stub, NativeCode.View(_location.Stub, NativeCode.FixupPrecodeLength).ToArray()),
        new RegionEvidence("cell", EvidenceKind.Pointer, (ulong)_location.Cell, BitConverter.GetBytes((ulong)NativeCode.ReadPointer(_location.Cell))),
        new RegionEvidence("body", EvidenceKind.Code, (ulong)_location.Body, NativeCode.View(_location.Body, _location.BodyLength).ToArray()),
    ];

    internal static string NameOf(MethodBase method)
    {
        ArgumentNullException.ThrowIfNull(method);
        string generic = method.IsGenericMethod
            ? "<" + string.Join(",", Array.ConvertAll(method.GetGenericArguments(), t => t.Name)) + ">"
            : string.Empty;
        return $"{method.DeclaringType?.FullName}.{method.Name}{generic}";
    }
}
