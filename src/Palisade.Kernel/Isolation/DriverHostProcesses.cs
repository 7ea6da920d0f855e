using System.Collections.Concurrent;
using Palisade.Interop;

namespace Palisade.Kernel.Isolation;

/// <summary>
/// The live driver host processes of isolated drivers. They are part of the kernel for the kernel boundary: a guest that
/// may not signal, trace or open the <c>/proc</c> entries of the kernel's own process may not do so to a driver host
/// either (a guest that killed the antivirus' host would otherwise have its registrations fault, and its files go
/// unscanned when the driver chose to allow on a fault). A host is listed from its spawn until it is reaped, so its pid
/// cannot name another process while it is listed.
/// </summary>
public static class DriverHostProcesses
{
    private static readonly ConcurrentDictionary<int, byte> Live = new();

    internal static void Started(int pid) => Live[pid] = 0;

    internal static void Reaped(int pid) => Live.TryRemove(pid, out _);

    /// <summary>
    /// True when <paramref name="id"/> names a live driver host or one of its threads (a tid works wherever a pid does).
    /// No system call while no driver runs isolated; one tgkill with signal 0 (which delivers nothing) per host otherwise.
    /// </summary>
    public static bool Includes(int id)
    {
        if (id <= 0 || Live.IsEmpty)
        {
            return false;
        }

        foreach (KeyValuePair<int, byte> host in Live)
        {
            if (id == host.Key || Libc.Syscall(Sys.Tgkill, host.Key, id, 0, 0, 0, 0) == 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when <paramref name="processGroup"/> is a driver host's own group (each host leads one).</summary>
    public static bool IsHostGroup(int processGroup) => processGroup > 0 && Live.ContainsKey(processGroup);
}
