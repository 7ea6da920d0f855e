using System.Globalization;
using Palisade.Host.Linux.Launch;

namespace Palisade.Host.Linux.Tests;

public sealed class LauncherProcessTests : IDisposable
{
    private readonly Guest _guest = new();

    [Fact]
    public void A_launcher_spawned_ahead_runs_nothing_until_it_is_told_what_to_trap_then_runs_the_program_mediated()
    {
        string ran = _guest.PathOf("ran");
        string secret = _guest.PathOf("SECRET");
        File.WriteAllText(secret, "x");
        using LauncherProcess launcher = LauncherProcess.Spawn(Guest.Launcher, "/bin/sh",
            ["-c", $"echo ran > '{ran}'; cat '{secret}' >/dev/null 2>&1 && exit 1; exit 7"]);

        // The launcher's runtime has started and waits on its control socket (read on descriptor 3): nothing ran.
        Assert.True(WaitUntilReadingControl(launcher.Pid, TimeSpan.FromSeconds(60)), "the launcher never waited for its families");
        Assert.False(File.Exists(ran));

        using SupervisedGuest guest = SupervisedGuest.Start(launcher, Guest.DenyMarker());
        Assert.Equal(7, guest.WaitForExit());
        Assert.Equal("ran\n", File.ReadAllText(ran));
    }

    [Fact]
    public void A_launcher_disposed_before_its_run_is_killed_and_reaped()
    {
        int pid;
        using (LauncherProcess launcher = LauncherProcess.Spawn(Guest.Launcher, "/bin/true", []))
        {
            pid = launcher.Pid;
            Assert.True(pid > 0);
        }

        Assert.False(Directory.Exists($"/proc/{pid}"), $"the launcher {pid} is still there (running or a zombie)");
    }

    [Fact]
    public void A_launcher_can_be_handed_over_to_one_run_only()
    {
        using LauncherProcess launcher = LauncherProcess.Spawn(Guest.Launcher, "/bin/true", []);
        using (SupervisedGuest guest = SupervisedGuest.Start(launcher, Guest.DenyMarker()))
        {
            Assert.Equal(0, guest.WaitForExit());
        }

        Assert.Throws<InvalidOperationException>(() => SupervisedGuest.Start(launcher, Guest.DenyMarker()));
    }

    private static bool WaitUntilReadingControl(int pid, TimeSpan patience)
    {
        // /proc/PID/syscall: "0 0x3 ..." while the main thread is blocked in read(3, ...).
        DateTime deadline = DateTime.UtcNow + patience;
        while (DateTime.UtcNow < deadline)
        {
            string[] fields = File.ReadAllText($"/proc/{pid}/syscall").Split(' ');
            if (fields.Length > 1 && fields[0] == "0" && long.Parse(fields[1].AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture) == Launcher.ControlFd)
            {
                return true;
            }

            Thread.Sleep(10);
        }

        return false;
    }

    public void Dispose() => _guest.Dispose();
}
