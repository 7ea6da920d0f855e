using System.Globalization;
using Palisade.Interop;

namespace Palisade.Host.Linux.Launch;

/// <summary>
/// The processes below a root in the host's process tree, read from /proc: what a bug check kills so that every
/// guest stops, whether or not a driver subscribed to the process events that would have put it in the kernel's
/// process table. Runs once, on the way down; it allocates freely.
/// </summary>
internal static class GuestTree
{
    private const int Rounds = 16;

    /// <summary>
    /// Kills every descendant of <paramref name="root"/> with SIGKILL, repeating the walk until a round finds none
    /// (a guest forking while the walk runs is caught by the next round). Returns how many kills were sent.
    /// A guest that left the tree (a daemon re-parented to init) is not found; docs/security.md lists this.
    /// </summary>
    public static int KillDescendants(int root)
    {
        int sent = 0;
        for (int round = 0; round < Rounds; round++)
        {
            List<int> found = Descendants(root);
            if (found.Count == 0)
            {
                break;
            }

            foreach (int pid in found)
            {
                if (Libc.Kill(pid, Libc.SIGKILL) == 0)
                {
                    sent++;
                }
            }
        }

        return sent;
    }

    /// <summary>The live processes whose parent is <paramref name="parent"/>.</summary>
    public static List<int> Children(int parent)
    {
        var children = new List<int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && ParentOf(dir) == parent)
            {
                children.Add(pid);
            }
        }

        return children;
    }

    /// <summary>The live descendants of <paramref name="root"/> (not the root itself).</summary>
    public static List<int> Descendants(int root)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
                || ParentOf(dir) is not { } parent)
            {
                continue;
            }

            if (!children.TryGetValue(parent, out List<int>? list))
            {
                children[parent] = list = [];
            }

            list.Add(pid);
        }

        var result = new List<int>();
        var queue = new Queue<int>();
        queue.Enqueue(root);
        while (queue.Count > 0)
        {
            if (!children.TryGetValue(queue.Dequeue(), out List<int>? list))
            {
                continue;
            }

            foreach (int child in list)
            {
                result.Add(child);
                queue.Enqueue(child);
            }
        }

        return result;
    }

    private static int? ParentOf(string procDirectory)
    {
        try
        {
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so parse after the last ')'.
            string stat = File.ReadAllText(Path.Combine(procDirectory, "stat"));
            int close = stat.LastIndexOf(')');
            string[] fields = stat[(close + 2)..].Split(' ', 3);
            return int.Parse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentOutOfRangeException or IndexOutOfRangeException)
        {
            // The process ended while the walk ran.
            return null;
        }
    }
}
