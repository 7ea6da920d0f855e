// Linked into every attack project: the driver side of an attack. The loader starts it like any driver (signed
// package, Palisade.Api only); Load installs the tampering at once and Unload takes it back, so a test can put the
// kernel's code and tables back before the driver's load context is collected.
using Palisade.Api;

namespace Palisade.Attacks;

/// <summary>An attack packaged as a driver: <see cref="Install"/> tampers, the returned object undoes it.</summary>
public abstract class AttackDriver : IDriver
{
    private IDisposable? _installed;

    /// <summary>
    /// Installs the attack. A kernel the attack cannot find what it needs in fails the load with NotFound. With the
    /// parameter <c>delay</c> (milliseconds) the attack is installed that long after the load, on a thread of its own, so
    /// that a test can have its guests running when the kernel is tampered with.
    /// </summary>
    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Parameters.TryGetValue("delay", out string? delay))
        {
            int milliseconds = int.Parse(delay, System.Globalization.CultureInfo.InvariantCulture);
            new Thread(() =>
            {
                Thread.Sleep(milliseconds);
                _installed = Install(context);
            })
            { IsBackground = true, Name = "attack-delay" }.Start();
            return Status.Success;
        }

        try
        {
            _installed = Install(context);
            return Status.Success;
        }
        catch (InvalidOperationException)
        {
            return Status.NotFound;
        }
    }

    /// <summary>Undoes the attack.</summary>
    public void Unload()
    {
        _installed?.Dispose();
        _installed = null;
    }

    /// <summary>Tampers with the kernel; the result undoes it.</summary>
    /// <exception cref="InvalidOperationException">What the attack needs is not there (for example no guard in the compat flavor).</exception>
    protected abstract IDisposable Install(IDriverContext context);

    /// <summary>A driver parameter, or <paramref name="fallback"/>.</summary>
    protected static string Parameter(IDriverContext context, string key, string fallback)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Parameters.TryGetValue(key, out string? value) ? value : fallback;
    }
}

/// <summary>Runs an action once on dispose.</summary>
internal sealed class Undo(Action undo) : IDisposable
{
    private Action? _undo = undo;

    public void Dispose() => Interlocked.Exchange(ref _undo, null)?.Invoke();
}
