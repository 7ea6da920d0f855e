using System.Globalization;
using Palisade.Interop;

namespace Palisade.Host.Linux.Launch;

/// <summary>
/// A cgroup (v2) of its own for the guests of one run, made below the supervisor's own cgroup: the launcher is put in
/// it before it executes the program, so every process the run starts is in it, however it leaves the process tree (a
/// daemon that double-forked and was re-parented to init). <see cref="Kill"/> writes <c>cgroup.kill</c> (Linux 5.14),
/// which kills them all at once, and <see cref="Dispose"/> kills what is left, waits for the cgroup to empty and
/// removes it. No controller is enabled: the cgroup only holds the run's processes together.
/// </summary>
/// <remarks>
/// Guests cannot leave it: moving a process to another cgroup is a write of another cgroup's <c>cgroup.procs</c> (or
/// <c>cgroup.threads</c>), which the kernel boundary refuses for any cgroup outside this one
/// (<see cref="Contains"/>), and clone3 (whose CLONE_INTO_CGROUP could place a child elsewhere) is refused whenever
/// files are mediated.
/// </remarks>
internal sealed class RunCgroup : IDisposable
{
    /// <summary>How long <see cref="Dispose"/> waits for the killed processes to be gone before it leaves the cgroup behind.</summary>
    public static readonly TimeSpan EmptyWait = TimeSpan.FromSeconds(10);

    private static int s_runs;

    private RunCgroup(string path, Palisade.Api.FileIdentity identity, ulong device)
    {
        Path = path;
        Identity = identity;
        Device = device;
    }

    /// <summary>The cgroup's folder in the cgroup2 file system.</summary>
    public string Path { get; }

    /// <summary>The identity of the cgroup's folder.</summary>
    public Palisade.Api.FileIdentity Identity { get; }

    /// <summary>The device of the cgroup2 file system.</summary>
    public ulong Device { get; }

    /// <summary>
    /// Makes a cgroup for one run below the supervisor's own; null (with the reason) when the machine has no cgroup2
    /// mount, no <c>cgroup.kill</c>, or the supervisor may not make or fill a cgroup there.
    /// </summary>
    public static RunCgroup? TryCreate(out string? reason)
    {
        reason = null;
        string? mount = null, root = null;
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            string[] f = line.Split(' ');
            int separator = Array.IndexOf(f, "-", 6);
            if (separator > 0 && separator + 1 < f.Length && f[separator + 1] == "cgroup2")
            {
                (root, mount) = (f[3], f[4]);
                break;
            }
        }

        string? own = File.ReadLines("/proc/self/cgroup").FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal))?[3..];
        if (mount is null || root is null || own is null || !own.StartsWith(root, StringComparison.Ordinal))
        {
            reason = "no cgroup2 hierarchy is mounted where the supervisor's cgroup is";
            return null;
        }

        string parent = System.IO.Path.Join(mount, own[root.Length..]);
        string path = System.IO.Path.Join(parent, $"palisade-run-{Environment.ProcessId}-{Interlocked.Increment(ref s_runs)}");
        try
        {
            Directory.CreateDirectory(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            reason = $"cannot make a cgroup in {parent}: {e.Message}";
            return null;
        }

        if (!File.Exists(System.IO.Path.Join(path, "cgroup.kill"))
            || Libc.FileIdentityOf(path, out Palisade.Api.FileIdentity identity, out _) != 0)
        {
            TryRemove(path);
            reason = "this Linux has no cgroup.kill (5.14 or later)";
            return null;
        }

        return new RunCgroup(path, identity, identity.Device);
    }

    /// <summary>Puts process <paramref name="pid"/> (the launcher, before it executes the program) in the cgroup; false when Linux refuses.</summary>
    public bool Adopt(int pid) => Write("cgroup.procs", pid.ToString(CultureInfo.InvariantCulture));

    /// <summary>Kills every process in the cgroup at once (cgroup.kill).</summary>
    public void Kill() => _ = Write("cgroup.kill", "1");

    /// <summary>True while a process is in the cgroup.</summary>
    public bool IsPopulated
    {
        get
        {
            try
            {
                return File.ReadLines(System.IO.Path.Join(Path, "cgroup.events")).Any(l => l == "populated 1");
            }
            catch (IOException)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// True when the folder <paramref name="directory"/> (by identity, in the cgroup2 file system) is this cgroup or one
    /// below it: walks up with "..", a few steps at most.
    /// </summary>
    public unsafe bool Contains(int directory)
    {
        int current = Libc.Fcntl(directory, Libc.F_DUPFD_CLOEXEC, 0);
        byte* up = stackalloc byte[] { (byte)'.', (byte)'.', 0 };
        try
        {
            for (int depth = 0; depth < 64 && current >= 0; depth++)
            {
                Stat st;
                if (Libc.FStat(current, &st) != 0 || st.Dev != Device)
                {
                    return false;
                }

                if (st.Ino == Identity.Inode)
                {
                    return true;
                }

                int parent = Libc.OpenAt(current, up, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
                Stat parentStat;
                bool top = parent < 0 || (Libc.FStat(parent, &parentStat) == 0 && parentStat.Ino == st.Ino);
                Libc.CloseOwned(current);
                current = parent;
                if (top)
                {
                    return false;
                }
            }

            return false;
        }
        finally
        {
            Libc.CloseOwned(current);
        }
    }

    /// <summary>Kills what is left, waits (up to <see cref="EmptyWait"/>) for the cgroup to be empty, and removes it.</summary>
    public void Dispose()
    {
        Kill();
        WaitUntilEmpty(EmptyWait);
        TryRemove(Path);
    }

    /// <summary>Waits on cgroup.events (POLLPRI on each change) until "populated 0"; false when <paramref name="limit"/> passed first.</summary>
    public unsafe bool WaitUntilEmpty(TimeSpan limit)
    {
        long deadline = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        string events = System.IO.Path.Join(Path, "cgroup.events");
        using Microsoft.Win32.SafeHandles.SafeFileHandle handle = File.OpenHandle(events);
        while (IsPopulated)
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return false;
            }

            var pfd = new PollFd { Fd = (int)handle.DangerousGetHandle(), Events = Libc.POLLPRI };
            _ = Libc.Poll(&pfd, 1, (int)Math.Min(left, 1000));
        }

        return true;
    }

    private bool Write(string file, string value)
    {
        try
        {
            File.WriteAllText(System.IO.Path.Join(Path, file), value);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static void TryRemove(string path)
    {
        try
        {
            Directory.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Still populated (a process that would not die in time) or already gone: nothing more to do.
        }
    }
}
