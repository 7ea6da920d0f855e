using System.CommandLine;
using Palisade.Cli.Commands;

namespace Palisade.Cli;

/// <summary>Builds the <c>palisade</c> command tree; each verb lives in <c>Commands/</c>.</summary>
internal static class CommandLine
{
    public static int Run(string[] args)
    {
        var root = new RootCommand("Palisade: a kernel that runs real Linux programs and mediates what they do.");
        root.Subcommands.Add(ApiCommand.Create());
        root.Subcommands.Add(Commands.DriverCommand.Create());
        root.Subcommands.Add(Commands.TrustCommand.Create());
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(RegCommand.Create());
        root.Subcommands.Add(Commands.Analyze.Create());
        root.Subcommands.Add(Commands.BugCheckCommand.Create());
        return root.Parse(args).Invoke();
    }
}
