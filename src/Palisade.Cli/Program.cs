using Palisade.Host.Linux.Launch;

namespace Palisade.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        // The kernel's process is closed to guests before the first one starts (docs/security.md, the kernel boundary).
        if (KernelProcess.RunsGuests(args) && KernelProcess.Prepare() is { } failure)
        {
            Console.Error.WriteLine("palisade: " + failure);
            return Commands.RunCommand.SetupFailure;
        }

        return HiddenVerbs.TryRun(args, out int exitCode) ? exitCode : CommandLine.Run(args);
    }
}
