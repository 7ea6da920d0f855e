using System.Globalization;
using Palisade.Api;

namespace Palisade.Attacks.StructureTamper;

/// <summary>
/// Package <c>process-unlink</c>: hides a guest process the way DKOM rootkits do, by unlinking it from the active
/// process list (ActiveProcessLinks) while it keeps running. Parameter <c>pid</c>: the process to hide (required).
/// Unload links it back in at the head.
/// </summary>
public sealed class ProcessUnlinkDriver : AttackDriver
{
    /// <inheritdoc/>
    protected override IDisposable Install(IDriverContext context)
    {
        int pid = int.Parse(Parameter(context, "pid", "0"), CultureInfo.InvariantCulture);
        object table = Rootkit.FindObject(context, "Palisade.Kernel.Processes.ProcessTable");
        for (object? p = Rootkit.GetField(table, "Head"); p is not null; p = Rootkit.GetField(p, "Next"))
        {
            if ((int)Rootkit.GetProperty(p, "ProcessId")! == pid)
            {
                LinkedList.Unlink(table, p);
                object hidden = p;
                return new Undo(() => LinkedList.LinkAtHead(table, hidden));
            }
        }

        throw new InvalidOperationException($"Process {pid} is not in the active process list.");
    }
}

/// <summary>Unlinking from and relinking into the kernel's doubly linked lists (Head, Next, Previous).</summary>
internal static class LinkedList
{
    internal static void Unlink(object list, object entry)
    {
        object? previous = Rootkit.GetField(entry, "Previous");
        object? next = Rootkit.GetField(entry, "Next");
        if (previous is null)
        {
            Rootkit.SetField(list, "Head", next);
        }
        else
        {
            Rootkit.SetField(previous, "Next", next);
        }

        if (next is not null)
        {
            Rootkit.SetField(next, "Previous", previous);
        }

        Rootkit.SetField(entry, "Next", null);
        Rootkit.SetField(entry, "Previous", null);
    }

    internal static void LinkAtHead(object list, object entry)
    {
        object? head = Rootkit.GetField(list, "Head");
        Rootkit.SetField(entry, "Next", head);
        if (head is not null)
        {
            Rootkit.SetField(head, "Previous", entry);
        }

        Rootkit.SetField(list, "Head", entry);
    }
}
