using System.Diagnostics;

namespace Palisade.Guard.Tests;

/// <summary>Runs a program built next to the tests (the real <c>palisade</c> command, the crash host) as a child process.</summary>
internal static class ChildProcess
{
    internal static (int Status, string Output, string Error) Run(string dll, IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } path ? path : "dotnet";
        var start = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, dll));
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach ((string name, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        using Process process = Process.Start(start)!;
        Task<string> error = process.StandardError.ReadToEndAsync();
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }

        return (process.ExitCode, output.Result, error.Result);
    }
}

/// <summary>The real <c>palisade</c> command.</summary>
internal static class PalisadeCli
{
    internal static (int Status, string Output, string Error) Run(params string[] arguments) =>
        ChildProcess.Run("palisade.dll", null, arguments);
}
