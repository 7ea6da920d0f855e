using System.Diagnostics;
using Palisade.Api;
using Palisade.Host.Linux.Mediation;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>
/// The drivers' process control (terminate, suspend, resume) acts on a real process through the pidfd the host opened
/// when it first saw it, named by the kernel's start key. The process is a child of a shell the test starts (never a
/// child of the test host, so the host's own reaping is not disturbed), and the shell reports how it ended.
/// </summary>
public sealed class ProcessControlTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly TestKernel _k = new();
    private readonly Process _shell;
    private readonly int _sleep;
    private readonly ManualResetEventSlim _exited = new(false);
    private long _key;
    private IDriverContext _driver = null!;

    public ProcessControlTests()
    {
        _shell = Process.Start(new ProcessStartInfo("sh", ["-c", "sleep 600 & echo $!; wait $!; echo \"status $?\""])
        {
            RedirectStandardOutput = true,
        })!;
        _sleep = int.Parse(_shell.StandardOutput.ReadLine()!, System.Globalization.CultureInfo.InvariantCulture);
        _driver = _k.Start(c =>
        {
            c.Processes.RegisterThreadCreate((in ThreadInfo i) =>
            {
                if (i.ProcessId == _sleep)
                {
                    Volatile.Write(ref _key, i.ProcessStartKey);
                }
            }, out _);
            return c.Processes.RegisterProcessExit((in ProcessExitInfo i) =>
            {
                if (i.ProcessId == _sleep)
                {
                    _exited.Set();
                }
            }, out _);
        });

        // The sleep's first call, as the supervisor reports it: the kernel learns of it and the host opens its pidfd.
        new ProcessMediator(_k.Host).ProcessStarted(new Requester(_sleep, _sleep), _shell.Id);
    }

    public void Dispose()
    {
        if (!_shell.HasExited)
        {
            _shell.Kill(entireProcessTree: true);
            _shell.WaitForExit();
        }

        _shell.Dispose();
        _k.Dispose();
        _exited.Dispose();
    }

    private char State() => File.ReadAllText("/proc/" + _sleep + "/stat").Split(") ")[1][0];

    [Fact]
    public void Terminate_kills_the_process_its_start_key_names_and_its_exit_is_reported()
    {
        Assert.NotEqual(0, _key);

        Assert.Equal(Status.Success, _driver.Processes.TerminateProcess(_key));

        Assert.True(_exited.Wait(Patience), "the process-exit notification did not come");
        Assert.Equal("status 137", _shell.StandardOutput.ReadToEnd().Trim());
    }

    [Fact]
    public void A_start_key_whose_process_ended_names_nothing()
    {
        Assert.Equal(Status.Success, _driver.Processes.TerminateProcess(_key));
        Assert.True(_exited.Wait(Patience), "the process-exit notification did not come");

        Assert.Equal(Status.NotFound, _driver.Processes.TerminateProcess(_key));
        Assert.Equal(Status.NotFound, _driver.Processes.SuspendProcess(_key));
    }

    [Fact]
    public void Suspend_stops_every_thread_and_resume_lets_it_go_on()
    {
        Assert.Equal(Status.Success, _driver.Processes.SuspendProcess(_key));
        Assert.True(SpinWait.SpinUntil(() => State() == 'T', Patience), "the process did not stop");

        Assert.Equal(Status.Success, _driver.Processes.ResumeProcess(_key));
        Assert.True(SpinWait.SpinUntil(() => State() != 'T', Patience), "the process did not go on");
    }

    [Fact]
    public void A_key_of_zero_is_an_invalid_parameter()
    {
        Assert.Equal(Status.InvalidParameter, _driver.Processes.TerminateProcess(0));
        Assert.Equal(Status.InvalidParameter, _driver.Processes.SuspendProcess(-5));
    }
}
