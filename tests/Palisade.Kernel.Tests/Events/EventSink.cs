// Real sinks for the event stream's tests: a pipe whose reader the test controls (stalled until it starts reading),
// and the parsed lines of a finished stream.
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace Palisade.Kernel.Tests.Events;

/// <summary>
/// A pipe(2): the kernel writes to <see cref="Writer"/>; nothing reads until <see cref="StartReading"/>, so the
/// stream's writer thread blocks as soon as the pipe's 64 KiB buffer is full, exactly as with a consumer that paused.
/// </summary>
internal sealed partial class StalledPipe : IDisposable
{
    private readonly FileStream _reader;
    private readonly MemoryStream _received = new();
    private Thread? _pump;
    private Exception? _pumpFailure;

    public StalledPipe()
    {
        int[] fds = new int[2];
        Assert.True(Pipe2(fds, OCloexec) == 0, "pipe2 failed: errno " + Marshal.GetLastPInvokeError());
        _reader = new FileStream(new SafeFileHandle(fds[0], ownsHandle: true), FileAccess.Read, 1);
        Writer = new FileStream(new SafeFileHandle(fds[1], ownsHandle: true), FileAccess.Write, 1);
    }

    public FileStream Writer { get; }

    /// <summary>Starts a thread that reads everything until the writer closes the pipe.</summary>
    public void StartReading()
    {
        _pump = new Thread(() =>
        {
            try
            {
                _reader.CopyTo(_received);
            }
            catch (IOException e)
            {
                _pumpFailure = e;
            }
        }) { IsBackground = true, Name = "test-events-reader" };
        _pump.Start();
    }

    /// <summary>Closes the reading end without reading: the next write fails (EPIPE).</summary>
    public void CloseReader() => _reader.Dispose();

    /// <summary>Closes the writing end (the kernel, disposed, has written its last line), waits for the reader to see
    /// the end, then returns every line.</summary>
    public IReadOnlyList<JsonElement> Lines()
    {
        Assert.NotNull(_pump);
        Writer.Dispose();
        Assert.True(_pump.Join(TimeSpan.FromMinutes(1)), "the reader did not see the end of the event stream");
        Assert.Null(_pumpFailure);
        return StreamLines.Parse(_received.ToArray());
    }

    public void Dispose()
    {
        Writer.Dispose();
        _reader.Dispose();
        _received.Dispose();
    }

    private const int OCloexec = 0x80000;

    [LibraryImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    private static partial int Pipe2([Out] int[] fds, int flags);
}

internal static class StreamLines
{
    /// <summary>Parses JSON lines; every line must be one complete JSON object.</summary>
    public static IReadOnlyList<JsonElement> Parse(byte[] bytes)
    {
        string text = Encoding.UTF8.GetString(bytes);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        var lines = new List<JsonElement>();
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using JsonDocument doc = JsonDocument.Parse(line);
            Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
            lines.Add(doc.RootElement.Clone());
        }

        return lines;
    }

    public static string Type(this JsonElement e) => e.GetProperty("type").GetString()!;

    public static string Channel(this JsonElement e) => e.GetProperty("channel").GetString()!;

    /// <summary>For each channel, the channelSeq numbers of its lines plus every number its gap lines report lost.</summary>
    public static Dictionary<string, List<long>> AccountedPerChannel(IReadOnlyList<JsonElement> lines)
    {
        var accounted = new Dictionary<string, List<long>>(StringComparer.Ordinal);
        foreach (JsonElement e in lines)
        {
            if (!accounted.TryGetValue(e.Channel(), out List<long>? list))
            {
                accounted[e.Channel()] = list = [];
            }

            if (e.Type() == "gap")
            {
                for (long s = e.GetProperty("from").GetInt64(); s <= e.GetProperty("to").GetInt64(); s++)
                {
                    list.Add(s);
                }
            }
            else
            {
                list.Add(e.GetProperty("channelSeq").GetInt64());
            }
        }

        return accounted;
    }
}
