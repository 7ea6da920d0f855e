using Palisade.Host.Linux.Launch;
using Palisade.Host.Linux.Mediation;
using Palisade.Host.Linux.Filtering;

namespace Palisade.Host.Linux.Tests;

/// <summary>Runs real programs under the supervisor, in a scratch directory, and compiles small C probes.</summary>
internal sealed class Guest : IDisposable
{
    public Guest() => Directory = System.IO.Directory.CreateTempSubdirectory("palisade-host-").FullName;

    public string Directory { get; }

    public static LaunchCommand Launcher
    {
        get
        {
            string apphost = Path.Combine(AppContext.BaseDirectory, "palisade");
            return File.Exists(apphost)
                ? new LaunchCommand(apphost, [])
                : new LaunchCommand("dotnet", [Path.Combine(AppContext.BaseDirectory, "palisade.dll")]);
        }
    }

    public string PathOf(string name) => Path.Combine(Directory, name);

    /// <summary>Runs /bin/sh -c <paramref name="script"/> in <see cref="Directory"/> under <paramref name="mediator"/>; returns the exit status.</summary>
    public int Shell(ISyscallMediator mediator, string script) =>
        Run(mediator, "/bin/sh", ["-c", $"cd '{Directory}' && {script}"]);

    public static int Run(ISyscallMediator mediator, string program, IReadOnlyList<string> arguments) =>
        Run(mediator, program, arguments, out _);

    /// <summary>Runs a program; <paramref name="handled"/> is how many notifications its supervisor answered.</summary>
    public static int Run(ISyscallMediator mediator, string program, IReadOnlyList<string> arguments, out long handled)
    {
        using var guest = SupervisedGuest.Start(Launcher, mediator, program, arguments);
        handled = 0;
        var wait = Task.Run(guest.WaitForExit);
        if (!wait.Wait(TimeSpan.FromSeconds(60)))
        {
            guest.Signal(9);
            throw new TimeoutException($"{program} did not finish: the supervisor stalled.");
        }

        Assert.True(guest.Supervisor.WaitForEnd(TimeSpan.FromSeconds(30)), $"the supervisor of {program} did not end after it exited");
        handled = guest.Supervisor.Handled;
        return wait.Result;
    }

    public static MarkerPolicyMediator DenyMarker(string marker = "SECRET", SyscallFamilies families = SyscallFamilies.All) => new(families, marker);

    /// <summary>Compiles a C probe once per test run; returns its path, or null when gcc is missing.</summary>
    public static string? Probe(string name, string source) => CProbes.Compile(name, source);

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
