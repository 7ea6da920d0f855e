using System.Text.Json;
using Palisade.Api;

namespace Palisade.Kernel.Events;

/// <summary>
/// The kernel's event stream (<c>palisade run --events</c>): one JSON object per line for every mediated
/// operation (time, pid, operation, arguments, each driver's verdict, result), for driver-reported events and for
/// driver faults. Writing is serialized; when no sink is attached, nothing is recorded or formatted.
/// </summary>
internal sealed class EventStream : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Utf8JsonWriter? _json;
    private readonly Stream? _stream;
    private readonly bool _ownsStream;

    public EventStream(Stream? sink, bool ownsStream)
    {
        _stream = sink;
        _ownsStream = ownsStream;
        if (sink is not null)
        {
            _json = new Utf8JsonWriter(sink, new JsonWriterOptions { SkipValidation = true });
        }
    }

    /// <summary>True when a sink is attached; dispatch records verdicts only then.</summary>
    public bool Enabled => _json is not null;

    /// <summary>Raised for every driver fault, whether or not a sink is attached (tests and the CLI listen).</summary>
    public event Action<string, string>? DriverFault;

    public void WriteOperation(OperationRecord record)
    {
        if (_json is null)
        {
            return;
        }

        lock (_lock)
        {
            Begin("operation");
            _json.WriteNumber("pid", record.ProcessId);
            _json.WriteString("operation", record.Operation);
            _json.WriteStartObject("arguments");
            for (int i = 0; i < record.ArgumentCount; i++)
            {
                _json.WriteString(record.ArgumentNames[i], record.ArgumentValues[i]);
            }

            _json.WriteEndObject();
            _json.WriteStartArray("verdicts");
            for (int i = 0; i < record.VerdictCount; i++)
            {
                _json.WriteStartObject();
                _json.WriteString("driver", record.VerdictDrivers[i]);
                _json.WriteString("verdict", record.Verdicts[i]);
                _json.WriteEndObject();
            }

            _json.WriteEndArray();
            _json.WriteString("result", record.Result.Name);
            EndLine();
        }
    }

    public void WriteDriverEvent(string driver, string kind, string message, int processId, string? path)
    {
        if (_json is null)
        {
            return;
        }

        lock (_lock)
        {
            Begin("driver");
            _json.WriteString("driver", driver);
            _json.WriteString("kind", kind);
            _json.WriteString("message", message);
            _json.WriteNumber("pid", processId);
            if (path is not null)
            {
                _json.WriteString("path", path);
            }

            EndLine();
        }
    }

    public void WriteDriverFault(string driver, string reason)
    {
        DriverFault?.Invoke(driver, reason);
        if (_json is null)
        {
            return;
        }

        lock (_lock)
        {
            Begin("driver-fault");
            _json.WriteString("driver", driver);
            _json.WriteString("reason", reason);
            EndLine();
        }
    }

    /// <summary>
    /// A fault of one registration (a callback that threw, overran its deadline or returned an unusable verdict): a
    /// <c>driver-fault</c> line naming the driver, the registration and the operation, with what the kernel did.
    /// </summary>
    public void WriteRegistrationFault(string driver, string registration, string operation, string kind, string reason,
        string verdict, int consecutiveFaults, bool disabled)
    {
        DriverFault?.Invoke(driver, reason);
        if (_json is null)
        {
            return;
        }

        lock (_lock)
        {
            Begin("driver-fault");
            _json.WriteString("driver", driver);
            _json.WriteString("registration", registration);
            _json.WriteString("operation", operation);
            _json.WriteString("fault", kind);
            _json.WriteString("reason", reason);
            _json.WriteString("verdict", verdict);
            _json.WriteNumber("consecutiveFaults", consecutiveFaults);
            _json.WriteBoolean("disabled", disabled);
            EndLine();
        }
    }

    public void WriteKernel(string kind, string message)
    {
        if (_json is null)
        {
            return;
        }

        lock (_lock)
        {
            Begin("kernel");
            _json.WriteString("kind", kind);
            _json.WriteString("message", message);
            EndLine();
        }
    }

    /// <summary>Starts one event line: the object, its time and its type. The caller holds the lock.</summary>
    private void Begin(string type)
    {
        _json!.WriteStartObject();
        _json.WriteString("time", DateTimeOffset.UtcNow);
        _json.WriteString("type", type);
    }

    /// <summary>Ends the event's object and its line.</summary>
    private void EndLine()
    {
        _json!.WriteEndObject();
        _json!.Flush();
        _stream!.WriteByte((byte)'\n');
        _stream.Flush();
        _json.Reset();
    }

    public void Dispose()
    {
        _json?.Dispose();
        if (_ownsStream)
        {
            _stream?.Dispose();
        }
    }
}

/// <summary>
/// What one mediated operation did, gathered during dispatch when the event stream is enabled. One instance per
/// kernel thread, reused.
/// </summary>
internal sealed class OperationRecord
{
    private const int Max = 16;

    public int ProcessId;
    public string Operation = "";
    public int ArgumentCount;
    public readonly string[] ArgumentNames = new string[Max];
    public readonly string[] ArgumentValues = new string[Max];
    public int VerdictCount;
    public readonly string[] VerdictDrivers = new string[Max * 4];
    public readonly string[] Verdicts = new string[Max * 4];
    public Status Result;

    public void Begin(int pid, string operation)
    {
        ProcessId = pid;
        Operation = operation;
        ArgumentCount = 0;
        VerdictCount = 0;
        Result = Status.Success;
    }

    public void Argument(string name, string? value)
    {
        if (ArgumentCount < Max && value is not null)
        {
            ArgumentNames[ArgumentCount] = name;
            ArgumentValues[ArgumentCount++] = value;
        }
    }

    public void Verdict(string driver, string verdict)
    {
        if (VerdictCount < Verdicts.Length)
        {
            VerdictDrivers[VerdictCount] = driver;
            Verdicts[VerdictCount++] = verdict;
        }
    }
}
