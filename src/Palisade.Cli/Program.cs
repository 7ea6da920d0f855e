namespace Palisade.Cli;

internal static class Program
{
    private static int Main(string[] args) =>
        Palisade.Host.Linux.Launch.HiddenVerbs.TryRun(args, out int exitCode) ? exitCode : CommandLine.Run(args);
}
