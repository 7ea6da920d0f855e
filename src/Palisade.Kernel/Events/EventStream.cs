// The kernel's event stream (palisade run --events): one JSON object per line, written by one writer thread.
//
// Producers never write to the sink. Each formats its line on its own thread (a reused buffer: nothing allocated)
// and copies it into a bounded channel: the kernel's channel for operation lines, kernel lines and driver faults,
// and one channel per driver for what it reports. The writer takes lines from every channel in the order they were
// queued (each line takes a ticket from one counter), prefixes the global sequence number, its channel and its
// number in the channel, and writes them in batches. When a channel is full the policy decides: Drop counts the
// line lost and the writer later reports the hole in the channel's numbering as a gap line; Block makes the guest
// operation that ends with an operation line wait for room, while callbacks and ReportEvent still never wait.
// docs/events.md documents every line.
using System.Buffers;
using System.Buffers.Text;
using System.Text.Json;
using Palisade.Api;

namespace Palisade.Kernel.Events;

internal sealed class EventStream : IDisposable
{
    /// <summary>The version of the line schema (docs/events.md); the first line of every stream states it.</summary>
    public const int Schema = 1;

    /// <summary>The channel of operation lines, kernel lines and driver faults.</summary>
    public const string KernelChannelName = "kernel";

    /// <summary>Under the drop policy, how long disposing waits for a consumer that stopped reading.</summary>
    public static readonly TimeSpan DropShutdownWait = TimeSpan.FromSeconds(5);

    private const int BatchBytes = 64 * 1024;

    /// <summary>While lines keep coming, the writer looks every millisecond instead of being woken for each line: a
    /// wake-up per line (a futex and, on another CPU, an inter-processor interrupt) would cost the guest more than
    /// the line itself.</summary>
    private const int PollMilliseconds = 1;

    /// <summary>Polls without a line after which the writer parks until a producer wakes it (100 ms).</summary>
    private const int QuietPollsBeforeParking = 100;

    private static readonly JsonEncodedText s_time = JsonEncodedText.Encode("time");
    private static readonly JsonEncodedText s_type = JsonEncodedText.Encode("type");
    private static readonly JsonEncodedText s_pid = JsonEncodedText.Encode("pid");
    private static readonly JsonEncodedText s_operation = JsonEncodedText.Encode("operation");
    private static readonly JsonEncodedText s_arguments = JsonEncodedText.Encode("arguments");
    private static readonly JsonEncodedText s_verdicts = JsonEncodedText.Encode("verdicts");
    private static readonly JsonEncodedText s_verdict = JsonEncodedText.Encode("verdict");
    private static readonly JsonEncodedText s_result = JsonEncodedText.Encode("result");
    private static readonly JsonEncodedText s_driver = JsonEncodedText.Encode("driver");
    private static readonly JsonEncodedText s_kind = JsonEncodedText.Encode("kind");
    private static readonly JsonEncodedText s_message = JsonEncodedText.Encode("message");
    private static readonly JsonEncodedText s_path = JsonEncodedText.Encode("path");
    private static readonly JsonEncodedText s_reason = JsonEncodedText.Encode("reason");
    private static readonly JsonEncodedText s_changed = JsonEncodedText.Encode("changed");
    private static readonly JsonEncodedText s_status = JsonEncodedText.Encode("status");
    private static readonly JsonEncodedText s_registration = JsonEncodedText.Encode("registration");
    private static readonly JsonEncodedText s_fault = JsonEncodedText.Encode("fault");
    private static readonly JsonEncodedText s_consecutiveFaults = JsonEncodedText.Encode("consecutiveFaults");
    private static readonly JsonEncodedText s_disabled = JsonEncodedText.Encode("disabled");
    private static readonly JsonEncodedText s_seq = JsonEncodedText.Encode("seq");
    private static readonly JsonEncodedText s_channel = JsonEncodedText.Encode("channel");
    private static readonly JsonEncodedText s_channelSeq = JsonEncodedText.Encode("channelSeq");
    private static readonly JsonEncodedText s_lost = JsonEncodedText.Encode("lost");
    private static readonly JsonEncodedText s_from = JsonEncodedText.Encode("from");
    private static readonly JsonEncodedText s_to = JsonEncodedText.Encode("to");
    private static readonly JsonEncodedText s_lines = JsonEncodedText.Encode("lines");
    private static readonly JsonEncodedText s_typeOperation = JsonEncodedText.Encode("operation");
    private static readonly JsonEncodedText s_typeDriver = JsonEncodedText.Encode("driver");
    private static readonly JsonEncodedText s_typeFault = JsonEncodedText.Encode("driver-fault");
    private static readonly JsonEncodedText s_typeKernel = JsonEncodedText.Encode("kernel");
    private static readonly JsonEncodedText s_typeParameters = JsonEncodedText.Encode("parameters");
    private static readonly JsonEncodedText s_typeSecurityCenter = JsonEncodedText.Encode("security-center");
    private static readonly JsonEncodedText s_change = JsonEncodedText.Encode("change");
    private static readonly JsonEncodedText s_product = JsonEncodedText.Encode("product");
    private static readonly JsonEncodedText s_state = JsonEncodedText.Encode("state");
    private static readonly JsonEncodedText s_typeGap = JsonEncodedText.Encode("gap");
    private static readonly JsonEncodedText s_typeStart = JsonEncodedText.Encode("stream-start");
    private static readonly JsonEncodedText s_typeEnd = JsonEncodedText.Encode("stream-end");

    [ThreadStatic]
    private static LineBuilder? t_line;

    private readonly Stream? _sink;
    private readonly bool _ownsSink;
    private readonly Lock _channelsLock = new();
    private readonly EventChannel? _kernel;
    private readonly Thread? _writer;
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
    private readonly object _progress = new();
    private EventChannel[] _channels = [];
    private int _progressWaiters;
    private int _roomWaiters;
    private int _writerIdle;
    private long _tickets;
    private volatile bool _stopping;
    private volatile string? _sinkError;
    private long _discarded;
    private bool _disposed;

    // The writer thread's own state.
    private readonly ArrayBufferWriter<byte> _out = new(BatchBytes * 2);
    private readonly Utf8JsonWriter _outJson;
    private long _seq;
    private long _batchLines;
    private int _quietPolls;

    public EventStream(Stream? sink, bool ownsStream, EventStreamOptions? options = null)
    {
        Options = options ?? EventStreamOptions.Default;
        _sink = sink;
        _ownsSink = ownsStream;
        _outJson = new Utf8JsonWriter(_out, new JsonWriterOptions { SkipValidation = true });
        if (sink is null)
        {
            return;
        }

        _kernel = new EventChannel(KernelChannelName, Options.KernelChannelBytes, Options.RingSize(Options.KernelChannelBytes));
        _channels = [_kernel];
        LineBuilder b = Builder();
        Utf8JsonWriter json = b.Begin(s_typeStart);
        json.WriteNumber("schema", Schema);
        json.WriteString("kernelVersion", PalisadeKernel.Version);
        json.WriteString("policy", Options.Policy == EventsPolicy.Block ? "block" : "drop");
        json.WriteNumber("kernelChannelBytes", Options.KernelChannelBytes);
        json.WriteNumber("driverChannelBytes", Options.DriverChannelBytes);
        _kernel.TryWrite(b.End(), ref _tickets);
        _writer = new Thread(Run) { IsBackground = true, Name = "palisade-events" };
        _writer.Start();
    }

    public EventStreamOptions Options { get; }

    /// <summary>True when a sink is attached; dispatch records verdicts only then.</summary>
    public bool Enabled => _kernel is not null;

    /// <summary>Raised for every driver fault, whether or not a sink is attached (tests and the CLI listen).</summary>
    public event Action<string, string>? DriverFault;

    /// <summary>Lines lost to full channels so far (each reported in the stream by a gap line).</summary>
    public long LostLines
    {
        get
        {
            long n = 0;
            foreach (EventChannel c in Volatile.Read(ref _channels))
            {
                n += c.Lost;
            }

            return n;
        }
    }

    /// <summary>Lines taken from the channels but not written because the sink failed (see <see cref="SinkError"/>).</summary>
    public long DiscardedLines => Interlocked.Read(ref _discarded);

    /// <summary>Why the sink stopped accepting lines (for example the reader closed its end), or null.</summary>
    public string? SinkError => _sinkError;

    /// <summary>Operations waiting for room under the block policy, right now.</summary>
    public int WaitingOperations => Volatile.Read(ref _roomWaiters);

    /// <summary>The kernel's channel, or null when no sink is attached.</summary>
    public EventChannel? KernelChannel => _kernel;

    /// <summary>Every channel, the kernel's first.</summary>
    public IReadOnlyList<EventChannel> Channels => Volatile.Read(ref _channels);

    /// <summary>
    /// The channel of a driver's own lines, made on first use and kept for the life of the stream (a driver loaded
    /// again under the same name continues its numbering). Null when no sink is attached.
    /// </summary>
    public EventChannel? OpenChannel(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (_kernel is null)
        {
            return null;
        }

        lock (_channelsLock)
        {
            foreach (EventChannel c in _channels)
            {
                if (string.Equals(c.Name, name, StringComparison.Ordinal))
                {
                    return c;
                }
            }

            var channel = new EventChannel(name, Options.DriverChannelBytes, Options.RingSize(Options.DriverChannelBytes));
            if (_stopping)
            {
                channel.Close();
            }

            Volatile.Write(ref _channels, [.. _channels, channel]);
            return channel;
        }
    }

    /// <summary>
    /// Writes the line of a mediated operation. Called when the operation ends, before the guest gets its answer:
    /// under the block policy this is where the guest waits for room; under the drop policy it never waits.
    /// </summary>
    public void WriteOperation(OperationRecord record)
    {
        if (_kernel is null)
        {
            return;
        }

        LineBuilder b = Builder();
        Utf8JsonWriter json = b.Begin(s_typeOperation);
        json.WriteNumber(s_pid, record.ProcessId);
        json.WriteString(s_operation, record.Operation);
        json.WriteStartObject(s_arguments);
        for (int i = 0; i < record.ArgumentCount; i++)
        {
            WriteText(json, record.ArgumentNames[i], record.ArgumentValues[i]);
        }

        json.WriteEndObject();
        json.WriteStartArray(s_verdicts);
        for (int i = 0; i < record.VerdictCount; i++)
        {
            json.WriteStartObject();
            WriteText(json, s_driver, record.VerdictDrivers[i]);
            WriteText(json, s_verdict, record.Verdicts[i]);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteString(s_result, record.Result.Name);
        ReadOnlySpan<byte> line = b.End();
        if (Options.Policy == EventsPolicy.Block)
        {
            WaitForRoom(line.Length);
        }

        Queue(_kernel, line);
    }

    /// <summary>Writes an event a driver reported, to the driver's channel. Never waits.</summary>
    /// <returns>True when the line was queued (or no sink is attached); false when the channel was full and the
    /// line is lost (the stream reports it in a gap line).</returns>
    public bool WriteDriverEvent(EventChannel? channel, string driver, string kind, string message, int processId, string? path)
    {
        if (channel is null)
        {
            return true;
        }

        LineBuilder b = Builder();
        Utf8JsonWriter json = b.Begin(s_typeDriver);
        WriteText(json, s_driver, driver);
        WriteText(json, s_kind, kind);
        WriteText(json, s_message, message);
        json.WriteNumber(s_pid, processId);
        WriteText(json, s_path, path);
        return Queue(channel, b.End());
    }

    /// <summary>Reports a driver fault: raises <see cref="DriverFault"/> and writes a line to the kernel channel. Never waits.</summary>
    public void WriteDriverFault(string driver, string reason)
    {
        DriverFault?.Invoke(driver, reason);
        if (_kernel is null)
        {
            return;
        }

        LineBuilder b = Builder();
        Utf8JsonWriter json = b.Begin(s_typeFault);
        WriteText(json, s_driver, driver);
        WriteText(json, s_reason, reason);
        Queue(_kernel, b.End());
    }

    /// <summary>
    /// A fault of one registration (a callback that threw, overran its deadline or returned an unusable verdict): a
    /// <c>driver-fault</c> line naming the driver, the registration and the operation, with what the kernel did. Never
    /// waits.
    /// </summary>
    public void WriteRegistrationFault(string driver, string registration, string operation, string kind, string reason,
        string verdict, int consecutiveFaults, bool disabled)
    {
        DriverFault?.Invoke(driver, reason);
        if (_kernel is null)
        {
            return;
        }

        LineBuilder b = Builder();
        Utf8JsonWriter json = b.Begin(s_typeFault);
        WriteText(json, s_driver, driver);
        WriteText(json, s_registration, registration);
        WriteText(json, s_operation, operation);
        WriteText(json, s_fault, kind);
        WriteText(json, s_reason, reason);
        WriteText(json, s_verdict, verdict);
        json.WriteNumber(s_consecutiveFaults, consecutiveFaults);
        json.WriteBoolean(s_disabled, disabled);
        Queue(_kernel, b.End());
    }

    /// <summary>Writes a line about the kernel itself (a driver loaded or unloaded). Never waits.</summary>
    public void WriteKernel(string kind, string message)
    {
        if (_kernel is null)
        {
            return;
        }

        LineBuilder b = Builder();
        Utf8JsonWriter json = b.Begin(s_typeKernel);
        WriteText(json, s_kind, kind);
        WriteText(json, s_message, message);
        Queue(_kernel, b.End());
    }

    /// <summary>Writes that a driver was told of a change of its parameters, with the names that changed and what
    /// its callbacks returned (the first error, or Success). Never waits.</summary>
    public void WriteParameters(string driver, IReadOnlyList<string> changed, Status status)
    {
        if (_kernel is null)
        {
            return;
        }

        LineBuilder b = Builder();
        Utf8JsonWriter json = b.Begin(s_typeParameters);
        WriteText(json, s_driver, driver);
        json.WriteStartArray(s_changed);
        foreach (string name in changed)
        {
            json.WriteStringValue(WellFormed(name));
        }

        json.WriteEndArray();
        json.WriteString(s_status, status.Name);
        Queue(_kernel, b.End());
    }

    /// <summary>
    /// Writes a change of the security center: a product <c>registered</c>, its <c>state</c> reported, or
    /// <c>unregistered</c> (by its driver, or by the kernel at the driver's unload), with the product's kind, name,
    /// driver and state after the change. Never waits.
    /// </summary>
    public void WriteSecurityCenter(string change, string driver, SecurityProductKind kind, string product, ProductState state)
    {
        if (_kernel is null)
        {
            return;
        }

        LineBuilder b = Builder();
        Utf8JsonWriter json = b.Begin(s_typeSecurityCenter);
        WriteText(json, s_change, change);
        WriteText(json, s_driver, driver);
        WriteText(json, s_kind, kind.ToString());
        WriteText(json, s_product, product);
        WriteText(json, s_state, state.ToString());
        Queue(_kernel, b.End());
    }

    /// <summary>
    /// Waits until every line offered before the call is written to the sink and the sink flushed (lost lines:
    /// until their gap line is). Returns at once without a sink or after the sink failed. For tests and shutdown:
    /// with a consumer that does not read, it waits as long as the consumer does.
    /// </summary>
    public void Flush()
    {
        if (_kernel is null)
        {
            return;
        }

        EventChannel[] channels = Volatile.Read(ref _channels);
        long[] targets = new long[channels.Length];
        for (int i = 0; i < channels.Length; i++)
        {
            targets[i] = channels[i].Produced;
        }

        Wake();
        Interlocked.Increment(ref _progressWaiters);
        try
        {
            lock (_progress)
            {
                while (!Delivered(channels, targets) && _sinkError is null && _writer!.IsAlive)
                {
                    Monitor.Wait(_progress);
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _progressWaiters);
        }
    }

    /// <summary>
    /// Ends the stream: later lines are refused, the writer writes what is queued and a last <c>stream-end</c>
    /// line, and the sink is closed if the stream owns it. Under the drop policy it waits at most
    /// <see cref="DropShutdownWait"/> for a consumer that stopped reading; under the block policy, as long as the
    /// consumer takes.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_writer is null)
        {
            if (_ownsSink)
            {
                _sink?.Dispose();
            }

            return;
        }

        lock (_channelsLock)
        {
            foreach (EventChannel c in _channels)
            {
                c.Close();
            }

            _stopping = true;
        }

        Wake();
        lock (_progress)
        {
            Monitor.PulseAll(_progress);
        }

        bool finished = _writer.Join(Options.Policy == EventsPolicy.Block ? Timeout.InfiniteTimeSpan : DropShutdownWait);
        if (!finished)
        {
            // The writer is blocked in a write the consumer never takes; the process is about to end with it.
            _sinkError ??= "the consumer stopped reading; the stream was abandoned at shutdown";
            return;
        }

        // _wake is not disposed: a late producer (a fault reported after the stream ended) may still set it, and a
        // ManualResetEventSlim whose wait handle was never asked for holds no kernel resource.
        _outJson.Dispose();
        if (_ownsSink)
        {
            try
            {
                _sink!.Dispose();
            }
            catch (IOException)
            {
                // The reader went away; the error is already recorded.
            }
        }
    }

    private static LineBuilder Builder() => t_line ??= new LineBuilder();

    private bool Queue(EventChannel channel, ReadOnlySpan<byte> line)
    {
        bool queued = channel.TryWrite(line, ref _tickets);
        if (!queued)
        {
            // The gap is reported once the writer looks; a lost line is rare enough to wake it for.
            Wake();
        }
        else if (Volatile.Read(ref _writerIdle) == 1 && Interlocked.Exchange(ref _writerIdle, 0) == 1)
        {
            // The writer has parked (no line for a while): this line wakes it. Otherwise it is polling.
            _wake.Set();
        }

        return queued;
    }

    /// <summary>Wakes the writer whether it parked or is polling (flushes, waiting operations, losses, shutdown).</summary>
    private void Wake()
    {
        Volatile.Write(ref _writerIdle, 0);
        _wake.Set();
    }

    private bool HasRoom(int lineLength)
    {
        EventChannel kernel = _kernel!;
        long need = EventChannel.RecordHeaderSize + lineLength;
        long used = kernel.Used;
        if (used != 0 && used + need > kernel.Capacity)
        {
            return false;
        }

        foreach (EventChannel c in Volatile.Read(ref _channels))
        {
            if (c.Used > c.Capacity)
            {
                return false;
            }
        }

        return true;
    }

    private void WaitForRoom(int lineLength)
    {
        if (HasRoom(lineLength))
        {
            return;
        }

        Interlocked.Increment(ref _roomWaiters);
        Interlocked.Increment(ref _progressWaiters);
        try
        {
            Wake();
            lock (_progress)
            {
                while (!HasRoom(lineLength) && !_stopping && _sinkError is null)
                {
                    Monitor.Wait(_progress);
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _progressWaiters);
            Interlocked.Decrement(ref _roomWaiters);
        }
    }

    private static bool Delivered(EventChannel[] channels, long[] targets)
    {
        for (int i = 0; i < channels.Length; i++)
        {
            if (channels[i].Delivered < targets[i])
            {
                return false;
            }
        }

        return true;
    }

    // ---- The writer thread ----

    private void Run()
    {
        while (true)
        {
            // Read before draining: once set, every channel is closed, so this drain takes the last lines.
            bool stopping = _stopping;
            bool moved = Drain();
            ReportTrailingGaps();
            WriteOut();
            if (stopping)
            {
                AppendEnd();
                WriteOut();
                return;
            }

            if (moved)
            {
                _quietPolls = 0;
            }
            else
            {
                Idle();
            }
        }
    }

    /// <summary>Moves every queued line, oldest ticket first, into the batch; writes full batches.</summary>
    private bool Drain()
    {
        bool moved = false;
        while (true)
        {
            EventChannel[] channels = Volatile.Read(ref _channels);
            EventChannel? next = null;
            long best = long.MaxValue;
            foreach (EventChannel c in channels)
            {
                if (c.TryPeek(out long ticket) && ticket < best)
                {
                    best = ticket;
                    next = c;
                }
            }

            if (next is null)
            {
                return moved;
            }

            ReadOnlySpan<byte> line = next.Current(out long channelSeq);
            if (channelSeq > next.Expected)
            {
                AppendGap(next, next.Expected, channelSeq - 1);
            }

            AppendLine(next, channelSeq, line);
            next.Expected = channelSeq + 1;
            next.Advance();
            moved = true;
            if (_out.WrittenCount >= BatchBytes)
            {
                WriteOut();
            }
        }
    }

    private void ReportTrailingGaps()
    {
        foreach (EventChannel c in Volatile.Read(ref _channels))
        {
            long last = c.TrailingLoss();
            if (last != 0)
            {
                AppendGap(c, c.Expected, last);
                c.Expected = last + 1;
            }
        }
    }

    private void Idle()
    {
        if (++_quietPolls < QuietPollsBeforeParking)
        {
            _wake.Wait(PollMilliseconds);
            _wake.Reset();
            return;
        }

        Interlocked.Exchange(ref _writerIdle, 1);
        if (_stopping || AnyQueued())
        {
            Volatile.Write(ref _writerIdle, 0);
            return;
        }

        _wake.Wait();
        _wake.Reset();
    }

    private bool AnyQueued()
    {
        foreach (EventChannel c in Volatile.Read(ref _channels))
        {
            if (c.TryPeek(out _) || c.Lost > 0 && c.Produced >= c.Expected)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Writes the batch to the sink, then tells waiting producers and flushes about the progress.</summary>
    private void WriteOut()
    {
        if (_out.WrittenCount > 0)
        {
            if (_sinkError is null)
            {
                try
                {
                    _sink!.Write(_out.WrittenSpan);
                    _sink.Flush();
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException or UnauthorizedAccessException)
                {
                    _sinkError = e.Message;
                }
            }

            if (_sinkError is not null)
            {
                Interlocked.Add(ref _discarded, _batchLines);
            }

            _out.ResetWrittenCount();
            _batchLines = 0;
        }

        foreach (EventChannel c in Volatile.Read(ref _channels))
        {
            c.Delivered = c.Expected - 1;
        }

        // Pairs with the waiters' increment: either they see the room made above, or this sees them.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _progressWaiters) > 0)
        {
            lock (_progress)
            {
                Monitor.PulseAll(_progress);
            }
        }
    }

    private void AppendLine(EventChannel channel, long channelSeq, ReadOnlySpan<byte> line)
    {
        ReadOnlySpan<byte> name = channel.NameJson.EncodedUtf8Bytes;
        Span<byte> dst = _out.GetSpan(64 + name.Length + line.Length);
        int n = 0;
        n += Put(dst[n..], "{\"seq\":"u8);
        Utf8Formatter.TryFormat(++_seq, dst[n..], out int w);
        n += w;
        n += Put(dst[n..], ",\"channel\":\""u8);
        n += Put(dst[n..], name);
        n += Put(dst[n..], "\",\"channelSeq\":"u8);
        Utf8Formatter.TryFormat(channelSeq, dst[n..], out w);
        n += w;
        dst[n++] = (byte)',';
        n += Put(dst[n..], line[1..]);
        dst[n++] = (byte)'\n';
        _out.Advance(n);
        _batchLines++;
    }

    private void AppendGap(EventChannel channel, long from, long to)
    {
        _outJson.Reset(_out);
        _outJson.WriteStartObject();
        _outJson.WriteNumber(s_seq, ++_seq);
        _outJson.WriteString(s_channel, channel.NameJson);
        _outJson.WriteString(s_time, DateTimeOffset.UtcNow);
        _outJson.WriteString(s_type, s_typeGap);
        _outJson.WriteNumber(s_lost, to - from + 1);
        _outJson.WriteNumber(s_from, from);
        _outJson.WriteNumber(s_to, to);
        _outJson.WriteEndObject();
        _outJson.Flush();
        _out.Write("\n"u8);
        _batchLines++;
    }

    private void AppendEnd()
    {
        EventChannel kernel = _kernel!;
        _outJson.Reset(_out);
        _outJson.WriteStartObject();
        _outJson.WriteNumber(s_seq, ++_seq);
        _outJson.WriteString(s_channel, kernel.NameJson);
        _outJson.WriteNumber(s_channelSeq, kernel.Expected++);
        _outJson.WriteString(s_time, DateTimeOffset.UtcNow);
        _outJson.WriteString(s_type, s_typeEnd);
        _outJson.WriteNumber(s_lines, _seq - 1);
        _outJson.WriteStartObject(s_lost);
        foreach (EventChannel c in Volatile.Read(ref _channels))
        {
            _outJson.WriteNumber(c.NameJson, c.Lost);
        }

        _outJson.WriteEndObject();
        _outJson.WriteEndObject();
        _outJson.Flush();
        _out.Write("\n"u8);
        _batchLines++;
    }

    private static int Put(Span<byte> dst, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(dst);
        return bytes.Length;
    }

    // ---- Formatting on the producer's thread ----

    private static void WriteText(Utf8JsonWriter json, JsonEncodedText name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, WellFormed(value));
        }
    }

    private static void WriteText(Utf8JsonWriter json, string name, string value) => json.WriteString(WellFormed(name), WellFormed(value));

    /// <summary>
    /// The text itself when it is well-formed UTF-16 (the usual case, checked without allocating), else a copy with
    /// each lone surrogate replaced by U+FFFD: JSON carries only Unicode text, and a driver's message may be anything.
    /// </summary>
    internal static string WellFormed(string text) =>
        System.Text.Ascii.IsValid(text) || IsWellFormedUtf16(text) ? text : Repair(text);

    private static bool IsWellFormedUtf16(string s)
    {
        // Not Span.IndexOfAnyInRange: it was measured allocating 96 bytes a call here (.NET 10.0.12). ASCII, the usual
        // case, is settled by the vectorized check above.
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(s[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static string Repair(string text)
    {
        char[] copy = text.ToCharArray();
        for (int j = 0; j < copy.Length; j++)
        {
            if (char.IsHighSurrogate(copy[j]) && j + 1 < copy.Length && char.IsLowSurrogate(copy[j + 1]))
            {
                j++;
            }
            else if (char.IsSurrogate(copy[j]))
            {
                copy[j] = '\uFFFD';
            }
        }

        return new string(copy);
    }

    /// <summary>A producer thread's reused line buffer and JSON writer.</summary>
    private sealed class LineBuilder
    {
        private readonly ArrayBufferWriter<byte> _buffer = new(2048);
        private readonly Utf8JsonWriter _json;

        public LineBuilder() => _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true });

        /// <summary>Starts a line's object with its time and type; the writer thread adds seq and channel in front.</summary>
        public Utf8JsonWriter Begin(JsonEncodedText type)
        {
            _buffer.ResetWrittenCount();
            _json.Reset(_buffer);
            _json.WriteStartObject();
            _json.WriteString(s_time, DateTimeOffset.UtcNow);
            _json.WriteString(s_type, type);
            return _json;
        }

        public ReadOnlySpan<byte> End()
        {
            _json.WriteEndObject();
            _json.Flush();
            return _buffer.WrittenSpan;
        }
    }
}
