using Palisade.Attacks.InlineDetour;
using Palisade.Kernel.BugChecks;
using Palisade.Kernel.Guard;

namespace Palisade.Guard.CrashHost;

/// <summary>
/// Boots a protected guard exactly as the kernel does (default sink, default dump place under $PALISADE_HOME),
/// detours a protected kernel function, and blocks. The guard must end this process with status 109.
/// </summary>
internal static class Program
{
    private static int Main()
    {
        var bugCheck = new KernelBugCheck(new BugCheckOptions
        {
            Drivers = () => [new LoadedDriverRecord("Inline Detour", "1.0.0", "Palisade.Attacks.InlineDetour", typeof(E9DetourAttack).Assembly.Location, "0")],
        });
        bugCheck.AddStopAction(() => Console.Out.WriteLine("guests stopped"));
        KernelGuard.Start(GuardOptions.Default, bugCheck, out _);
        Console.Out.WriteLine("guard running");
        Console.Out.Flush();

        new E9DetourAttack().Install();

        // Nothing here ever ends the wait: only the bug check ends this process.
        using var never = new ManualResetEventSlim(false);
        never.Wait();
        return 0;
    }
}
