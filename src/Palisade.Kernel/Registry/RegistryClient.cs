using System.Text;
using Palisade.Api;
using Palisade.Kernel.Dispatch;

namespace Palisade.Kernel.Registry;

/// <summary>
/// Registry operations issued as system services on behalf of a caller (the administrator's <c>palisade reg</c>, the
/// kernel reading a driver's parameters), so that they pass through the registry callbacks like any other.
/// String values are stored as Windows does, UTF-16LE with a terminating NUL.
/// </summary>
internal sealed class RegistryClient
{
    private readonly Func<RegistryRequest, Status> _call;

    /// <summary>Issues operations as registry system services of <paramref name="processId"/> in <paramref name="kernel"/>.</summary>
    public RegistryClient(PalisadeKernel kernel, int processId) => _call = r => SystemCall(kernel, processId, r);

    /// <summary>Issues operations through <paramref name="call"/> (for example to the kernel that holds the hive,
    /// through its control socket).</summary>
    public RegistryClient(Func<RegistryRequest, Status> call) => _call = call;

    /// <summary>Where a driver's parameters live.</summary>
    public static string ParametersKey(string driver) => @"\Registry\Machine\System\CurrentControlSet\Services\" + driver + @"\Parameters";

    /// <summary>Performs an operation already described by a request; its results are written to it.</summary>
    public Status Perform(RegistryRequest request) => _call(request);

    private Status Call(RegistryRequest r) => _call(r);

    private static Status SystemCall(PalisadeKernel kernel, int processId, RegistryRequest r)
    {
        var f = new ServiceFrame { ProcessId = processId, Registry = r };
        SystemService service = r.Operation switch
        {
            RegistryOperation.CreateKey => SystemService.CreateKey,
            RegistryOperation.OpenKey => SystemService.OpenKey,
            RegistryOperation.DeleteKey => SystemService.DeleteKey,
            RegistryOperation.SetValue => SystemService.SetValueKey,
            RegistryOperation.DeleteValue => SystemService.DeleteValueKey,
            RegistryOperation.QueryValue => SystemService.QueryValueKey,
            RegistryOperation.EnumerateKey => SystemService.EnumerateKey,
            RegistryOperation.EnumerateValue => SystemService.EnumerateValueKey,
            _ => SystemService.RenameKey,
        };
        return kernel.SystemCall(service, ref f);
    }

    private static RegistryRequest Request(RegistryOperation op, string path)
    {
        var r = new RegistryRequest();
        r.Reset(op, path);
        return r;
    }

    public Status CreateKey(string path, out bool created)
    {
        RegistryRequest r = Request(RegistryOperation.CreateKey, path);
        Status s = Call(r);
        created = r.Created;
        return s;
    }

    public Status DeleteKey(string path) => Call(Request(RegistryOperation.DeleteKey, path));

    public Status SetValue(string path, string? name, RegistryValueType type, ReadOnlyMemory<byte> data)
    {
        RegistryRequest r = Request(RegistryOperation.SetValue, path);
        r.ValueName = name;
        r.ValueType = type;
        r.Data = data;
        return Call(r);
    }

    public Status DeleteValue(string path, string? name)
    {
        RegistryRequest r = Request(RegistryOperation.DeleteValue, path);
        r.ValueName = name;
        return Call(r);
    }

    public Status QueryValue(string path, string? name, out RegistryValueType type, out ReadOnlyMemory<byte> data)
    {
        RegistryRequest r = Request(RegistryOperation.QueryValue, path);
        r.ValueName = name;
        Status s = Call(r);
        type = r.ResultType;
        data = r.ResultData;
        return s;
    }

    public Status EnumerateKeys(string path, out IReadOnlyList<string> names)
    {
        RegistryRequest r = Request(RegistryOperation.EnumerateKey, path);
        Status s = Call(r);
        names = r.Names;
        return s;
    }

    public Status EnumerateValues(string path, out IReadOnlyList<string> names)
    {
        RegistryRequest r = Request(RegistryOperation.EnumerateValue, path);
        Status s = Call(r);
        names = r.Names;
        return s;
    }

    public static byte[] EncodeString(string s) => Encoding.Unicode.GetBytes(s + "\0");

    public static string DecodeString(ReadOnlySpan<byte> data)
    {
        string s = Encoding.Unicode.GetString(data);
        return s.EndsWith('\0') ? s[..^1] : s;
    }

    /// <summary>Formats a value for display: strings as text, numbers in decimal, bytes in hex.</summary>
    public static string Format(RegistryValueType type, ReadOnlySpan<byte> data) => type switch
    {
        RegistryValueType.String or RegistryValueType.ExpandString => DecodeString(data),
        RegistryValueType.MultiString => string.Join(" | ", DecodeString(data).Split('\0', StringSplitOptions.RemoveEmptyEntries)),
        RegistryValueType.DWord when data.Length == 4 => BitConverter.ToUInt32(data).ToString(System.Globalization.CultureInfo.InvariantCulture),
        RegistryValueType.QWord when data.Length == 8 => BitConverter.ToUInt64(data).ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => Convert.ToHexString(data),
    };

    /// <summary>The string values of a driver's Parameters key (absent key: none).</summary>
    public Dictionary<string, string> ReadParameters(string driver)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        string key = ParametersKey(driver);
        if (EnumerateValues(key, out IReadOnlyList<string> names).IsError)
        {
            return result;
        }

        foreach (string name in names)
        {
            if (QueryValue(key, name, out RegistryValueType type, out ReadOnlyMemory<byte> data).IsSuccess
                && type is RegistryValueType.String or RegistryValueType.ExpandString)
            {
                result[name] = DecodeString(data.Span);
            }
        }

        return result;
    }
}
