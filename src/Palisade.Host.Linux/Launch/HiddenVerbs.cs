using System.Runtime.InteropServices;
using Palisade.Host.Linux.Mediation;
using Palisade.Host.Linux.Filtering;

namespace Palisade.Host.Linux.Launch;

/// <summary>
/// The CLI's hidden verbs owned by the host: <c>__launch</c> (the launcher, see <see cref="Launcher"/>),
/// <c>__driverhost</c> (an isolated driver's process, see <see cref="DriverHostProcess"/>) and
/// <c>__supervise [--deny MARKER] -- PROGRAM [ARGS...]</c>, which runs a program under the supervisor with
/// <see cref="MarkerPolicyMediator"/> on file opens (post decision included): the benchmark entry point
/// until <c>palisade run</c> wires the kernel.
/// </summary>
internal static class HiddenVerbs
{
    /// <summary>The command that starts a driver host: this executable, as it was started.</summary>
    public static Palisade.Kernel.Isolation.DriverHostCommand DriverHostCommand()
    {
        LaunchCommand self = LaunchCommand.OfCurrentProcess();
        return new Palisade.Kernel.Isolation.DriverHostCommand(self.Executable, self.PrefixArguments);
    }

    /// <summary>The supervise verb.</summary>
    public const string Supervise = "__supervise";

    /// <summary>Runs a hidden verb if <paramref name="args"/> names one; false otherwise.</summary>
    public static bool TryRun(string[] args, out int exitCode)
    {
        ArgumentNullException.ThrowIfNull(args);
        exitCode = 0;
        if (args.Length == 0)
        {
            return false;
        }

        if (args[0] == Launcher.Verb)
        {
            exitCode = Launcher.Run(args);
            return true;
        }

        if (args[0] == Palisade.Kernel.Isolation.DriverHostEntry.Verb)
        {
            exitCode = DriverHostProcess.Run(args);
            return true;
        }

        if (args[0] != Supervise)
        {
            return false;
        }

        string marker = string.Empty;
        int at = 1;
        if (args.Length > 2 && args[1] == "--deny")
        {
            marker = args[2];
            at = 3;
        }

        if (args.Length <= at + 1 || args[at] != "--")
        {
            Console.Error.WriteLine("usage: palisade __supervise [--deny MARKER] -- PROGRAM [ARGS...]");
            exitCode = 2;
            return true;
        }

        var mediator = new MarkerPolicyMediator(SyscallFamilies.FileOpen | SyscallFamilies.FileOpenPost, marker);
        exitCode = RunSupervised(LaunchCommand.OfCurrentProcess(), mediator, args[at + 1], args[(at + 2)..]);
        return true;
    }

    /// <summary>
    /// Runs a program to completion under <paramref name="mediator"/>, passing SIGTERM and SIGHUP on to it
    /// (SIGINT and SIGQUIT from a terminal already reach it: it shares our process group), and returns its
    /// exit status (128 + signal when killed). A decision that throws is answered EPERM and reported to
    /// <paramref name="onFault"/> (by default, written to standard error).
    /// </summary>
    public static int RunSupervised(LaunchCommand launcher, ISyscallMediator mediator, string program, IReadOnlyList<string> arguments, Action<Exception>? onFault = null)
    {
        ArgumentNullException.ThrowIfNull(launcher);
        using LauncherProcess spawned = LauncherProcess.Spawn(launcher, program, arguments);
        return RunSupervised(spawned, mediator, onFault);
    }

    /// <summary>
    /// Runs to completion the program of a launcher spawned ahead (<see cref="LauncherProcess.Spawn"/>), as
    /// <see cref="RunSupervised(LaunchCommand, ISyscallMediator, string, IReadOnlyList{string}, Action{Exception}?)"/> does.
    /// </summary>
    public static int RunSupervised(LauncherProcess launcher, ISyscallMediator mediator, Action<Exception>? onFault = null)
    {
        using var guest = SupervisedGuest.Start(launcher, mediator, onFault ?? WriteFault);
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => Forward(context, guest, 15));
        using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context => Forward(context, guest, 1));
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => context.Cancel = true);
        using var quit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, context => context.Cancel = true);
        int status = guest.WaitForExit();
        mediator.Drain();
        return status;
    }

    /// <summary>Writes a mediator fault to standard error.</summary>
    public static void WriteFault(Exception fault) => Console.Error.WriteLine($"palisade: mediator fault: {fault}");

    private static void Forward(PosixSignalContext context, SupervisedGuest guest, int signal)
    {
        context.Cancel = true;
        guest.Signal(signal);
    }
}
