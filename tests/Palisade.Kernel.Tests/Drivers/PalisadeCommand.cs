// Runs the real `palisade` command (the CLI project's apphost, built by the test project; see palisade-cli.txt in
// Palisade.Kernel.Tests.csproj) as a child process, so that the command-line tests see exactly what a user sees:
// stdout, stderr and the exit code.
using System.Diagnostics;

namespace Palisade.Kernel.Tests.Drivers;

internal sealed record CommandResult(int ExitCode, string Output, string Error);

internal static class PalisadeCommand
{
    private static readonly Lazy<string> Executable = new(() =>
    {
        string dll = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "palisade-cli.txt")).Trim();
        string apphost = Path.ChangeExtension(dll, null);
        Assert.True(File.Exists(apphost), $"the palisade command was not built at {apphost}");
        return apphost;
    });

    public static CommandResult Run(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var start = new ProcessStartInfo(Executable.Value)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment.Remove("PALISADE_HOME");
        if (environment is not null)
        {
            foreach ((string name, string value) in environment)
            {
                start.Environment[name] = value;
            }
        }

        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return new CommandResult(process.ExitCode, output.GetAwaiter().GetResult(), error.GetAwaiter().GetResult());
    }

    public static CommandResult Run(params string[] arguments) => Run(null, arguments);
}
