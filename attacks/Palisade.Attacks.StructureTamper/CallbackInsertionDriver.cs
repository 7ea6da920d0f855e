using System.Reflection;
using Palisade.Api;

namespace Palisade.Attacks.StructureTamper;

/// <summary>
/// Package <c>callback-insert</c>: puts a process-create callback of its own into the kernel's table without going
/// through the API (so no registration, no cookie from the kernel, no unload bookkeeping), the way a rootkit gets
/// called on every exec. The callback refuses images whose path ends with the parameter <c>deny</c> (default
/// <c>/id</c>). Unload takes it out again.
/// </summary>
public sealed class CallbackInsertionDriver : AttackDriver
{
    private static long s_calls;

    /// <summary>How many process creations the inserted callback has seen.</summary>
    public static long Calls => Interlocked.Read(ref s_calls);

    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        string deny = Parameter(context, "deny", "/id");
        object kernel = Rootkit.FindObject(context, "Palisade.Kernel.PalisadeKernel");
        object table = Rootkit.GetProperty(Rootkit.GetProperty(kernel, "Processes")!, "Create")!;
        ProcessCreateCallback callback = (in ProcessCreateInfo info) =>
        {
            Interlocked.Increment(ref s_calls);
            return info.ImagePath.EndsWith(deny, StringComparison.Ordinal) ? Status.AccessDenied : Status.Success;
        };

        Type registrationType = Rootkit.KernelType("Palisade.Kernel.Callbacks.CallbackRegistration`1").MakeGenericType(typeof(ProcessCreateCallback));
        object registration = Activator.CreateInstance(
            registrationType,
            BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic,
            null,
            [null, callback, 0m, null],
            null)!;
        Array entries = TableEntries.Of(table);
        Array next = Array.CreateInstance(entries.GetType().GetElementType()!, entries.Length + 1);
        next.SetValue(registration, 0);
        Array.Copy(entries, 0, next, 1, entries.Length);
        TableEntries.Replace(table, next);
        return new Undo(() => TableEntries.Replace(table, TableEntries.Where(TableEntries.Of(table), entry => !ReferenceEquals(entry, registration))));
    }
}
