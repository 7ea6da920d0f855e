using System.Diagnostics;
using Palisade.Interop;

namespace Palisade.Host.Linux.Tests;

/// <summary>
/// The injection of an opened file (SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND) against a signal that
/// reaches the supervising thread while the ioctl waits for the guest to take the descriptor. Linux marks the
/// notification answered when the ioctl queues the descriptor; a signal that cuts the wait short withdraws the
/// descriptor but not that answer, and the guest's call then returns 0 with no descriptor installed: its open "succeeds"
/// with descriptor 0 (ld.so read a shell's /dev/null for libc: "file too short"). The receiver watch sends exactly
/// such a signal (<see cref="InterruptSignal"/>) to a handed-over thread once the notification no longer looks pending,
/// which is true while the injection waits, and any process-directed signal can land on that thread too.
/// </summary>
public sealed class InjectionTests
{
    /// <summary>How long the guest's CPU is kept busy: the injection waits this long for the guest to run.</summary>
    private const int StarveMilliseconds = 600;

    private const int ProbeCpu = 1;
    private const int SupervisorCpu = 0;

    /// <summary>
    /// The guest: pinned to one CPU, it installs a filter that notifies openat, prints its listener's number, waits for a
    /// byte on stdin, then makes the notified openat and prints what the call returned.
    /// </summary>
    private const string ProbeSource = """
        #define _GNU_SOURCE
        #include <fcntl.h>
        #include <sched.h>
        #include <stddef.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <unistd.h>
        #include <sys/prctl.h>
        #include <sys/syscall.h>
        #include <linux/filter.h>
        #include <linux/seccomp.h>
        int main(int argc, char **argv) {
            cpu_set_t cpus; CPU_ZERO(&cpus); CPU_SET(atoi(argv[1]), &cpus);
            if (sched_setaffinity(0, sizeof cpus, &cpus) != 0) return 2;
            struct sock_filter filter[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            };
            struct sock_fprog program = { sizeof filter / sizeof filter[0], filter };
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 2;
            long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &program);
            if (listener < 0) return 2;
            printf("%ld\n", listener); fflush(stdout);
            char go;
            if (read(0, &go, 1) != 1) return 2;
            long fd = syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY | O_DIRECTORY);
            printf("%ld\n", fd); fflush(stdout);
            return 0;
        }
        """;

    // Root: a SCHED_FIFO thread keeps the guest's CPU busy. Two CPUs: the supervising thread works on the other one.
    [RootGuestFact("gcc", Cpus = 2)]
    public void A_signal_during_the_injection_does_not_answer_the_guest_without_its_descriptor()
    {
        string probe = Guest.Probe("addfd-signal", ProbeSource) ?? throw new InvalidOperationException("gcc could not compile the probe");
        Assert.True(InterruptSignal.EnsureInstalled());

        Outcome outcome = default;
        Exception? failure = null;
        var supervisor = new Thread(() =>
        {
            try
            {
                outcome = InjectWhileSignalled(probe);
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        supervisor.Start();
        Assert.True(supervisor.Join(TimeSpan.FromSeconds(60)), "the injection did not finish");
        Rethrow(failure);

        Assert.True(outcome.SignalledWhileWaiting, "the signal did not reach the injection while it waited for the guest");
        Assert.True(outcome.GuestReceived > 2, $"the guest's openat returned {outcome.GuestReceived}, the injection {outcome.Injected}");
        Assert.Equal(outcome.GuestReceived, outcome.Injected);
    }

    private readonly record struct Outcome(int Injected, long GuestReceived, bool SignalledWhileWaiting);

    /// <summary>
    /// On a thread of its own, pinned to <see cref="SupervisorCpu"/>: receives the probe's openat, keeps the probe's CPU
    /// busy, injects a descriptor and, once the ioctl waits for the probe, signals this thread.
    /// </summary>
    private static unsafe Outcome InjectWhileSignalled(string probePath)
    {
        Pin(SupervisorCpu);
        int self = (int)Libc.Syscall(Sys.Gettid, 0, 0, 0, 0, 0, 0);
        using var probe = Process.Start(new ProcessStartInfo(probePath, [ProbeCpu.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        })!;
        int pidfd = -1, listener = -1, file = -1;
        try
        {
            int guestListener = int.Parse(probe.StandardOutput.ReadLine() ?? "-1", System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(guestListener >= 0, "the probe could not install its filter");
            pidfd = Pidfd.Open(probe.Id);
            Assert.True(pidfd >= 0, $"pidfd_open: {Libc.LastError}");
            listener = (int)Libc.Syscall(Sys.PidfdGetfd, pidfd, guestListener, 0, 0, 0, 0);
            Assert.True(listener >= 0, $"pidfd_getfd: {Libc.LastError}");

            probe.StandardInput.Write('g');
            probe.StandardInput.Flush();
            SeccompNotif notification;
            Assert.Equal(0, Seccomp.Receive(listener, &notification));
            fixed (byte* root = "/\0"u8)
            {
                file = Libc.OpenAt(Libc.AT_FDCWD, root, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            }

            Assert.True(file >= 0);

            // The probe sleeps in its notification; from now on it cannot run until the spinner stops.
            using var spinning = new ManualResetEventSlim();
            Exception? spinFault = null, signalFault = null;
            var spinner = new Thread(() =>
            {
                try
                {
                    Spin(spinning);
                }
                catch (Exception e)
                {
                    spinFault = e;
                    spinning.Set();
                }
            });
            spinner.Start();
            Assert.True(spinning.Wait(TimeSpan.FromSeconds(30)), "the spinner did not start");
            Rethrow(spinFault);

            bool signalled = false;
            var signaller = new Thread(() =>
            {
                try
                {
                    signalled = SignalOnceWaiting(self, listener, spinner);
                }
                catch (Exception e)
                {
                    signalFault = e;
                }
            });
            signaller.Start();

            int injected = Seccomp.AddFdAndSend(listener, notification.Id, file, closeOnExec: false);
            InterruptSignal.Absorb();
            Assert.True(signaller.Join(TimeSpan.FromSeconds(30)), "the signaller did not finish");
            Assert.True(spinner.Join(TimeSpan.FromSeconds(30)), "the spinner did not stop");
            Rethrow(signalFault);

            string? received = probe.StandardOutput.ReadLine();
            Assert.True(probe.WaitForExit(30_000), "the probe did not exit");
            return new Outcome(injected, long.Parse(received ?? "-1", System.Globalization.CultureInfo.InvariantCulture), signalled);
        }
        finally
        {
            Libc.CloseOwned(file);
            Libc.CloseOwned(listener);
            Libc.CloseOwned(pidfd);
            if (!probe.HasExited)
            {
                probe.Kill();
            }
        }
    }

    /// <summary>Keeps <see cref="ProbeCpu"/> busy at a real-time priority for <see cref="StarveMilliseconds"/>.</summary>
    private static unsafe void Spin(ManualResetEventSlim spinning)
    {
        Pin(ProbeCpu);
        int priority = 1;
        const int SCHED_FIFO = 1;
        Assert.Equal(0, Libc.Syscall(Sys.SchedSetscheduler, 0, SCHED_FIFO, (long)&priority, 0, 0, 0));
        spinning.Set();
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < StarveMilliseconds)
        {
            Thread.SpinWait(1000);
        }
    }

    /// <summary>
    /// Waits until thread <paramref name="tid"/> sleeps in an ioctl on <paramref name="listener"/> (the /proc syscall line of
    /// a blocked thread: its call's number and arguments),
    /// then sends it the interrupt signal; true when that happened while <paramref name="spinner"/> still kept the probe
    /// from running (so the ioctl was waiting for the probe).
    /// </summary>
    private static bool SignalOnceWaiting(int tid, int listener, Thread spinner)
    {
        // Not on the probe's CPU, where the spinner would keep this thread from running too.
        Pin(SupervisorCpu);
        string expected = FormattableString.Invariant($"16 0x{listener:x} ");
        string path = FormattableString.Invariant($"/proc/self/task/{tid}/syscall");
        while (spinner.IsAlive)
        {
            if (File.ReadAllText(path).StartsWith(expected, StringComparison.Ordinal))
            {
                bool sent = InterruptSignal.Send(tid);
                return sent && spinner.IsAlive;
            }
        }

        return false;
    }

    /// <summary>Fails the test with what failed on another thread, if anything did.</summary>
    private static void Rethrow(Exception? failure)
    {
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    private static unsafe void Pin(int cpu)
    {
        ulong mask = 1UL << cpu;
        Assert.Equal(0, Libc.Syscall(Sys.SchedSetaffinity, 0, sizeof(ulong), (long)&mask, 0, 0, 0));
    }
}
