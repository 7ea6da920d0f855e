using System.Globalization;
using Palisade.Interop;

namespace Palisade.Host.Linux.Launch;

/// <summary>
/// Every guest of the runs this process supervises, so that each ends with its run: a run's guests are held in a cgroup
/// of their own (<see cref="RunCgroup"/>, where the machine allows), else the supervisor is their child subreaper, so
/// that a daemon that double-forked out of the tree is re-parented to it instead of init and stays its descendant. A bug
/// check stops them all (<see cref="StopAll"/>); the end of a run stops that run's (<see cref="SupervisedGuest"/>).
/// The walk of /proc runs on the way down only; it allocates freely.
/// </summary>
internal static class GuestTree
{
    private const int Rounds = 16;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, RunCgroup?> Runs = new();

    /// <summary>
    /// Held while a launcher is spawned and recorded, and while a round of <see cref="KillOrphansOf"/> decides and kills:
    /// a launcher spawned but not yet recorded would otherwise be an orphan to that round, and be killed.
    /// </summary>
    public static Lock Spawning { get; } = new();

    /// <summary>Records a live run: its launcher's pid and its cgroup (null when it runs under the subreaper).</summary>
    public static void Started(int launcher, RunCgroup? cgroup) => Runs[launcher] = cgroup;

    /// <summary>Forgets a run that has ended.</summary>
    public static void Ended(int launcher) => Runs.TryRemove(launcher, out _);

    /// <summary>
    /// Stops every guest of every run of this process: each run's cgroup is killed at once, then every descendant of the
    /// process (the subreaper's adopted orphans among them) is killed. Returns how many kills the walk sent.
    /// </summary>
    public static int StopAll()
    {
        foreach (RunCgroup? cgroup in Runs.Values)
        {
            cgroup?.Kill();
        }

        int sent = KillDescendants(Environment.ProcessId);

        // The process ends after a bug check without the runs' own ends: their cgroups are removed here.
        foreach (RunCgroup? cgroup in Runs.Values)
        {
            cgroup?.Dispose();
        }

        return sent;
    }

    /// <summary>
    /// Under the subreaper: kills the guests of the run of <paramref name="launcher"/> that outlived it, which are the
    /// process's descendants outside the trees of its other live runs (an orphan cannot be told apart by run; with one
    /// run per process, as under palisade run, that is exactly the run's guests).
    /// </summary>
    public static int KillOrphansOf(int launcher)
    {
        int sent = 0;
        for (int round = 0; round < Rounds; round++)
        {
            HashSet<int> others;
            lock (Spawning)
            {
                // The candidates are taken before the other runs' trees: a guest of another run that forks meanwhile makes
                // a process that is no candidate, where the other order made it one that no tree walked so far held
                // (a guest of a live run killed as an orphan: NetworkTests saw its python end with 137 once).
                List<int> candidates = Descendants(Environment.ProcessId);
                others = new HashSet<int>(Runs.Keys.Where(l => l != launcher));
                foreach (int other in others.ToArray())
                {
                    others.UnionWith(Descendants(other));
                }

                List<int> found = [.. candidates.Where(pid => !others.Contains(pid) && !OfOwnGroup(pid))];
                if (found.Count == 0)
                {
                    break;
                }

                foreach (int pid in found)
                {
                    sent += Libc.Kill(pid, Libc.SIGKILL) == 0 ? 1 : 0;
                }
            }

            ReapChildren(others);
        }

        return sent;
    }

    /// <summary>
    /// True for a process in this process's own process group: one it started for itself (a compiler a test runs, a
    /// helper), never a guest, which runs in its run's group and may not join this one (the kernel boundary refuses
    /// it), whether or not it later made a session of its own.
    /// </summary>
    private static bool OfOwnGroup(int pid)
    {
        long group = Libc.Syscall(Sys.Getpgid, pid, 0, 0, 0, 0, 0);
        return group > 0 && group == OwnGroup;
    }

    private static int OwnGroup { get; } = Spawn.GetProcessGroup();

    /// <summary>Reaps (waitid) the process's children that are dead, except the launchers of live runs (their own waiter
    /// reaps them) and the processes it started for itself (whoever started them reaps them).</summary>
    private static unsafe void ReapChildren(HashSet<int> keep)
    {
        foreach (int child in Children(Environment.ProcessId))
        {
            if (!keep.Contains(child) && !OfOwnGroup(child))
            {
                SigInfo info;
                _ = Libc.WaitId(Libc.P_PID, child, &info, Libc.WEXITED | Libc.WNOHANG);
            }
        }
    }

    /// <summary>
    /// Kills every descendant of <paramref name="root"/> with SIGKILL, repeating the walk until a round finds none
    /// (a guest forking while the walk runs is caught by the next round). Returns how many kills were sent.
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
