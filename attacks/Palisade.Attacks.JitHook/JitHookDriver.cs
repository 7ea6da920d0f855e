using Palisade.Api;

namespace Palisade.Attacks.JitHook;

/// <summary>
/// Package <c>jit-hook</c>: replaces the compileMethod slot of the JIT's ICorJitCompiler vtable with a forwarder,
/// so that every method compiled afterwards (kernel code included) passes through this driver first.
/// </summary>
public sealed class JitHookDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context) => JitHookAttack.Install();
}
