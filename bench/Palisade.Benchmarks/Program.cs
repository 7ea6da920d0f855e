using BenchmarkDotNet.Running;

namespace Palisade.Benchmarks;

internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "guard-cost")
        {
            return GuardCost.Run(args);
        }

        if (args.Length > 0 && args[0] == "events-throughput")
        {
            return EventThroughput.Run(args);
        }

        if (args.Length > 0 && args[0] == "ports-roundtrip")
        {
            return PortRoundTrip.Run(args);
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
