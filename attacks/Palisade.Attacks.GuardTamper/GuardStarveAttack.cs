using System.Reflection;
using Palisade.Api;

namespace Palisade.Attacks.GuardTamper;

/// <summary>
/// Package <c>guard-starve</c>: tries to starve the guard by reflection. Every guard context gets a new schedule
/// that waits an hour between sweeps, so the guard still "runs" but never looks. Unload puts the original schedules
/// back. In the compat flavor there is no guard, and the load fails with NotFound.
/// </summary>
public sealed class GuardStarveDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        object guard = Rootkit.FindObject(context, "Palisade.Kernel.Guard.KernelGuard");
        var contexts = (Array)Rootkit.GetField(guard, "_contexts")!;
        Type scheduleType = Rootkit.KernelType("Palisade.Kernel.Guard.GuardSchedule");
        var replaced = new List<(object Context, object? Schedule)>();
        foreach (object? guardContext in contexts)
        {
            object slow = Activator.CreateInstance(
                scheduleType,
                BindingFlags.Instance | BindingFlags.NonPublic,
                null,
                [TimeSpan.FromHours(1), TimeSpan.FromHours(1)],
                null)!;
            replaced.Add((guardContext!, Rootkit.GetField(guardContext!, "_schedule")));
            Rootkit.SetField(guardContext!, "_schedule", slow);
        }

        return new Undo(() =>
        {
            foreach ((object c, object? schedule) in replaced)
            {
                Rootkit.SetField(c, "_schedule", schedule);
            }
        });
    }
}
