using System.CommandLine;
using Palisade.Kernel.BugChecks;

namespace Palisade.Cli.Commands;

/// <summary><c>palisade analyze DUMP</c>: explains a crash dump and names the probable culprit driver.</summary>
internal static class Analyze
{
    /// <summary>Exit status when the dump cannot be read.</summary>
    internal const int UnreadableDump = 2;

    internal static Command Create()
    {
        var dump = new Argument<FileInfo>("dump") { Description = "A crash dump written by a bug check ($PALISADE_HOME/crash/*.json)." };
        var command = new Command("analyze", "Explain a crash dump and name the probable culprit driver.");
        command.Arguments.Add(dump);
        command.SetAction(parse => Run(parse.GetValue(dump)!, Console.Out, Console.Error));
        return command;
    }

    internal static int Run(FileInfo file, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(file);
        CrashDump dump;
        try
        {
            dump = CrashDump.FromJson(File.ReadAllText(file.FullName));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            error.WriteLine($"palisade analyze: {file.FullName}: {e.Message}");
            return UnreadableDump;
        }

        DumpExplainer.Explain(dump, output);
        return 0;
    }
}
