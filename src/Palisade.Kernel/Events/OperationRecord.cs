using Palisade.Api;

namespace Palisade.Kernel.Events;

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

    /// <summary>Adds an argument; a second value for the same name replaces the first (the line is a JSON object, whose
    /// names are unique). A null value is left out.</summary>
    public void Argument(string name, string? value)
    {
        if (value is null)
        {
            return;
        }

        for (int i = 0; i < ArgumentCount; i++)
        {
            if (string.Equals(ArgumentNames[i], name, StringComparison.Ordinal))
            {
                ArgumentValues[i] = value;
                return;
            }
        }

        if (ArgumentCount < Max)
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
