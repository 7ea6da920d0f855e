using Palisade.Api;

namespace Palisade.Attacks.InlineDetour;

/// <summary>
/// Package <c>inline-detour</c>: detours the kernel's file service (a protected kernel function) to
/// <see cref="FileServiceHook"/>, so every guest open is refused without any minifilter being asked.
/// Parameter <c>form</c>: <c>e9</c> (jmp rel32, the default) or <c>ff25</c> (jmp through an absolute pointer).
/// </summary>
public sealed class InlineDetourDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context) => Parameter(context, "form", "e9") switch
    {
        "e9" => E9DetourAttack.Install(FileServiceHook.Target, FileServiceHook.Replacement),
        "ff25" => AbsoluteJumpDetourAttack.Install(FileServiceHook.Target, FileServiceHook.Replacement),
        string other => throw new InvalidOperationException($"Unknown detour form \"{other}\"."),
    };
}
