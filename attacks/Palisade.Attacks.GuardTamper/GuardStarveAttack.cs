using System.Reflection;

namespace Palisade.Attacks.GuardTamper;

/// <summary>
/// Tries to starve the guard by reflection: gives every guard context a new schedule that waits an hour between
/// sweeps, so the guard still "runs" but never looks. Dispose puts the original schedules back.
/// </summary>
/// <param name="reachable">Any object from which the guard can be reached through fields (for a driver, its context).</param>
public sealed class GuardStarveAttack(object reachable) : IDisposable
{
    private readonly List<(object Context, object? Schedule)> _replaced = [];

    /// <summary>Installs the slow schedules.</summary>
    public void Install()
    {
        object guard = Rootkit.FindObject(reachable, "Palisade.Kernel.Guard.KernelGuard");
        var contexts = (Array)Rootkit.GetField(guard, "_contexts")!;
        Type scheduleType = Rootkit.KernelType("Palisade.Kernel.Guard.GuardSchedule");
        foreach (object? context in contexts)
        {
            object slow = Activator.CreateInstance(
                scheduleType,
                BindingFlags.Instance | BindingFlags.NonPublic,
                null,
                [TimeSpan.FromHours(1), TimeSpan.FromHours(1)],
                null)!;
            _replaced.Add((context!, Rootkit.GetField(context!, "_schedule")));
            Rootkit.SetField(context!, "_schedule", slow);
        }
    }

    /// <summary>Restores the original schedules.</summary>
    public void Dispose()
    {
        foreach ((object context, object? schedule) in _replaced)
        {
            Rootkit.SetField(context, "_schedule", schedule);
        }

        _replaced.Clear();
    }
}
