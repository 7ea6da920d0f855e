using System.Diagnostics;
using System.Globalization;
using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Drivers;
using Palisade.Ports.Client;

namespace Palisade.Benchmarks;

/// <summary>
/// The round trip of a message with a reply through a communication port (docs/ports.md), both ways: a client's
/// message answered by the driver's message callback (PortClient.Send), and the driver's message answered by the client
/// (IPortConnection.Send with a reply buffer, the way a scan request goes to a scanning service). Real kernel, real
/// SOCK_SEQPACKET socket, the kernel's reader thread and the client library's; one message in flight at a time.
/// usage: dotnet run -c Release --project bench/Palisade.Benchmarks -- ports-roundtrip [COUNT] [SIZE]
/// </summary>
internal static class PortRoundTrip
{
    internal static int Run(string[] args)
    {
        int count = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 100_000;
        int size = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 64;
        string home = Directory.CreateTempSubdirectory("palisade-bench-ports-").FullName;
        try
        {
            using var kernel = new PalisadeKernel(new KernelOptions(KernelFlavor.Protected, home));
            var driver = new PortDriver();
            Status s = kernel.StartDriver(new DriverObject("bench", "bench", "1.0", "", ""), driver, new Dictionary<string, string>());
            if (s.IsError)
            {
                Console.Error.WriteLine("the benchmark driver did not load: " + s);
                return 1;
            }

            using PortClient client = PortClient.Connect(driver.Port!.Path);
            byte[] message = new byte[size];
            Measure("client -> driver, reply", count, () => client.Send(message, TimeSpan.FromSeconds(10)));

            var answering = new Thread(() =>
            {
                while (client.Receive() is { } m)
                {
                    client.Reply(m.Id, m.Data);
                }
            }) { IsBackground = true };
            answering.Start();
            IPortConnection connection = driver.Port.Connections[0];
            byte[] reply = new byte[size];
            Measure("driver -> client, reply", count, () =>
            {
                Status sent = connection.Send(message, reply, out _, TimeSpan.FromSeconds(10));
                if (sent.IsError)
                {
                    throw new InvalidOperationException("send failed: " + sent);
                }
            });
            return 0;
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    private static void Measure(string what, int count, Action roundTrip)
    {
        for (int i = 0; i < Math.Min(count / 10, 5_000); i++)
        {
            roundTrip(); // Warm-up: JIT tiers, socket buffers.
        }

        var clock = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            roundTrip();
        }

        double seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{what}: {count} round trips in {seconds:F2} s = {count / seconds:F0} per second, {seconds * 1e6 / count:F1} µs each"));
    }

    private sealed class PortDriver : IDriver
    {
        public IPort? Port { get; private set; }

        public Status Load(IDriverContext context)
        {
            var callbacks = new PortCallbacks { Message = Echo };
            Status s = context.Ports.CreatePort("bench", new PortOptions(), callbacks, out IPort? port);
            Port = port;
            return s;
        }

        public void Unload()
        {
        }

        private static Status Echo(IPortConnection connection, ReadOnlySpan<byte> message, Span<byte> reply, out int replyLength)
        {
            message.CopyTo(reply);
            replyLength = message.Length;
            return Status.Success;
        }
    }
}
