// The kernel's event stream captured in memory, read back as short lines ("loaded: hello from x",
// "kernel driver-unloaded: x", "fault: …") so that tests can assert what the kernel and the driver did, in order.
using System.Text.Json;

namespace Palisade.Kernel.Tests.Drivers;

internal sealed class KernelEventLog : IDisposable
{
    public MemoryStream Sink { get; } = new();

    /// <summary>Waits until the kernel's stream has written every line so far (its writer thread writes them).</summary>
    public Action? Flush { get; set; }

    public List<string> Lines()
    {
        Flush?.Invoke();
        var lines = new List<string>();
        foreach (string line in System.Text.Encoding.UTF8.GetString(Sink.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using JsonDocument document = JsonDocument.Parse(line);
            JsonElement root = document.RootElement;
            string type = root.GetProperty("type").GetString()!;
            if (type == "stream-start")
            {
                continue;
            }

            lines.Add(type switch
            {
                "driver" => root.GetProperty("kind").GetString() + ": " + root.GetProperty("message").GetString(),
                "driver-fault" => "fault: " + root.GetProperty("reason").GetString(),
                "kernel" => "kernel " + root.GetProperty("kind").GetString() + ": " + root.GetProperty("message").GetString(),
                _ => type,
            });
        }

        return lines;
    }

    public void Dispose() => Sink.Dispose();
}
