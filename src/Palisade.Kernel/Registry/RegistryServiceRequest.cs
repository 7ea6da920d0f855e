using Palisade.Api;

namespace Palisade.Kernel.Registry;

/// <summary>The operations of the registry system services.</summary>
internal enum RegistryOperation
{
    CreateKey,
    OpenKey,
    DeleteKey,
    SetValue,
    DeleteValue,
    QueryValue,
    EnumerateKey,
    EnumerateValue,
    RenameKey,
}

/// <summary>The arguments and results of one registry service call.</summary>
internal sealed class RegistryRequest
{
    public RegistryOperation Operation;
    public string KeyPath = "";
    public string? ValueName;
    public string? NewName;
    public RegistryValueType ValueType;
    public ReadOnlyMemory<byte> Data;

    /// <summary>CreateKey: true when the key did not exist before.</summary>
    public bool Created;

    /// <summary>QueryValue: the type and data read.</summary>
    public RegistryValueType ResultType;
    public ReadOnlyMemory<byte> ResultData;

    /// <summary>EnumerateKey / EnumerateValue: the names.</summary>
    public IReadOnlyList<string> Names = [];

    /// <summary>True for the operations that change the registry when they succeed.</summary>
    public bool IsWrite => Operation is RegistryOperation.CreateKey or RegistryOperation.DeleteKey or RegistryOperation.SetValue
        or RegistryOperation.DeleteValue or RegistryOperation.RenameKey;

    /// <summary>After a successful operation: true when it changed the registry (a create that found the key
    /// changed nothing).</summary>
    public bool MadeChange => IsWrite && (Operation != RegistryOperation.CreateKey || Created);

    public void Reset(RegistryOperation op, string keyPath)
    {
        Operation = op;
        KeyPath = keyPath;
        ValueName = null;
        NewName = null;
        ValueType = RegistryValueType.None;
        Data = default;
        Created = false;
        ResultType = RegistryValueType.None;
        ResultData = default;
        Names = [];
    }
}
