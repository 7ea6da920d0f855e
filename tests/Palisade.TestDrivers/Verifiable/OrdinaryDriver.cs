// Ordinary C# the verifier must accept: lambdas and closures, LINQ, generics with constraints, async/await over
// tasks, string interpolation and concatenation, collection expressions (lists, arrays, spans, params spans),
// records and `with`, pattern matching and switch expressions, tuples, iterators, local functions, ref locals and
// `in` parameters, spans over arrays and u8 literals, locks, events, exceptions, hashing, JSON and regular
// expressions, and the API's own records and callbacks.
using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Palisade.Api;

namespace Palisade.TestDrivers.Verifiable;

/// <summary>A rule of the driver's own, a record.</summary>
public sealed record Rule(string Pattern, bool Allow, int Weight = 1)
{
    public Rule Heavier() => this with { Weight = Weight + 1 };
}

/// <summary>A value type with readonly members and an <c>in</c>-taking method.</summary>
public readonly record struct Counter(long Value)
{
    public Counter Add(in Counter other) => new(Value + other.Value);
}

/// <summary>A generic cache with constraints.</summary>
public sealed class Cache<TKey, TValue>
    where TKey : notnull, IEquatable<TKey>
    where TValue : class
{
    private readonly ConcurrentDictionary<TKey, TValue> _entries = new();

    public event EventHandler<TKey>? Added;

    public TValue GetOrAdd(TKey key, Func<TKey, TValue> factory)
    {
        TValue value = _entries.GetOrAdd(key, factory);
        Added?.Invoke(this, key);
        return value;
    }

    public int Count => _entries.Count;
}

/// <summary>The driver itself.</summary>
public sealed class OrdinaryDriver : IDriver
{
    private static ReadOnlySpan<byte> Magic => "PALISADE"u8;

    private readonly Lock _lock = new();
    private readonly List<Rule> _rules = [new Rule("/bin/*", true), new Rule("/tmp/*", false)];
    private readonly Cache<string, Rule> _cache = new();
    private IDriverContext? _context;
    private CallbackCookie _filter;
    private CallbackCookie _processCreate;
    private long _seen;

    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        int weight = Summarize([1, 2, 3]) + CountEven(Enumerable.Range(0, 10)) + Magic.Length;
        string report = $"{_rules.Count} rules, weight {weight}, {Describe(_rules[0])}, {Hash("palisade")[..8]}";
        report = string.Join(", ", report, Json(), Pattern("a1b2"), string.Concat("x", report, "y", weight.ToString(CultureInfo.InvariantCulture), "z"));
        context.ReportEvent("started", report.Length > 4096 ? report[..4096] : report, 0, null);
        Counter total = Totals().Aggregate(new Counter(0), (sum, c) => sum.Add(in c));
        _cache.Added += (_, key) => Interlocked.Increment(ref _seen);
        _cache.GetOrAdd("first", key => new Rule(key, true));
        Status s = context.Files.RegisterFilter(new FilterRegistration
        {
            Name = "ordinary",
            Altitude = "360000",
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = PreCreate }],
        }, out _filter);
        if (s.IsError)
        {
            return s;
        }

        s = context.Processes.RegisterProcessCreate(OnProcessCreate, out _processCreate);
        return s.IsError ? s : total.Value >= 0 ? Status.Success : Status.Unsuccessful;
    }

    public void Unload()
    {
        _context?.Files.UnregisterFilter(_filter);
        _context?.Processes.Unregister(_processCreate);
    }

    private PreOperationStatus PreCreate(ref FileOperation operation)
    {
        Interlocked.Increment(ref _seen);
        ref readonly string path = ref Pick(operation.Path);
        if (operation.Access.HasFlag(FileAccessRights.Execute) && Decide(path) is { Allow: false })
        {
            operation.Status = Status.AccessDenied;
            return PreOperationStatus.Complete;
        }

        return PreOperationStatus.SuccessNoCallback;
    }

    private static ref readonly string Pick(in string path) => ref path;

    private Status OnProcessCreate(in ProcessCreateInfo info)
    {
        lock (_lock)
        {
            return info.ImagePath switch
            {
                null => Status.Success,
                var p when p.EndsWith("/blocked", StringComparison.Ordinal) => Status.AccessDenied,
                _ => Status.Success,
            };
        }
    }

    private Rule? Decide(string path) => _rules.Where(r => Matches(r.Pattern, path)).OrderByDescending(r => r.Weight).FirstOrDefault();

    private static bool Matches(string pattern, string path) =>
        pattern.EndsWith('*') ? path.StartsWith(pattern[..^1], StringComparison.Ordinal) : pattern == path;

    private static int Summarize(ReadOnlySpan<int> values)
    {
        int sum = 0;
        foreach (int value in values)
        {
            sum += value;
        }

        Span<int> copy = new int[values.Length];
        values.CopyTo(copy);
        copy.Reverse();
        return sum + copy[0];
    }

    private static int CountEven(IEnumerable<int> values)
    {
        return values.Count(IsEven);

        static bool IsEven(int v) => (v & 1) == 0;
    }

    private static string Describe(object value) => value switch
    {
        Rule { Allow: true } rule => "allow " + rule.Pattern,
        Rule rule => "deny " + rule.Pattern,
        (int x, int y) => $"pair {x},{y}",
        int n when n > 0 => "positive",
        _ => value.ToString() ?? "",
    };

    private static string Hash(string text)
    {
        byte[] digest = SHA256.HashData(Encoding.UTF8.GetBytes(text));
        return Convert.ToHexStringLower(digest);
    }

    private static string Json()
    {
        using JsonDocument document = JsonDocument.Parse("""{"rules": [1, 2, 3]}""");
        return document.RootElement.GetProperty("rules").GetArrayLength().ToString(CultureInfo.InvariantCulture);
    }

    private static string Pattern(string text) => Regex.Replace(text, "[0-9]", "#");

    private static IEnumerable<Counter> Totals()
    {
        ImmutableArray<long> values = [1, 2, 3];
        foreach (long value in values)
        {
            yield return new Counter(value);
        }
    }

    /// <summary>Async code over tasks the driver completes itself.</summary>
    public static async Task<int> AddLaterAsync(Task<int> first, ValueTask<int> second)
    {
        int a = await first.ConfigureAwait(false);
        int b = await second;
        var source = new TaskCompletionSource<int>();
        source.SetResult(a + b);
        return await source.Task;
    }

    /// <summary>Tuples, deconstruction, ranges, dictionaries and exceptions.</summary>
    public static (int Count, string First) Split(string text)
    {
        string[] parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (string part in parts[..Math.Min(parts.Length, 3)])
        {
            seen[part] = seen.TryGetValue(part, out int n) ? n + 1 : 1;
        }

        try
        {
            return (seen.Count, parts.Length > 0 ? parts[0] : throw new FormatException("empty"));
        }
        catch (FormatException)
        {
            return (0, "");
        }
    }
}
