using System.CommandLine;
using System.Globalization;
using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Registry;

namespace Palisade.Cli.Commands;

/// <summary>
/// <c>palisade reg query|set|delete</c>: the configuration registry, through the kernel's registry services: those of
/// the running kernel that holds the hive when there is one (its control socket), else of a kernel booted on the
/// hive file for the command.
/// </summary>
internal static class RegCommand
{
    public static Command Create()
    {
        var reg = new Command("reg", @"Read and change the configuration registry (keys such as \Registry\Machine\Software\Vendor).");
        var home = new Option<string?>("--home") { Description = "The kernel's state folder (default $PALISADE_HOME or ~/.palisade)." };
        var key = new Argument<string>("key") { Description = @"The key's absolute path, for example \Registry\Machine\Software\Palisade." };
        var value = new Option<string?>("--value", "-v") { Description = "The value name (omit for the key itself; \"\" is the default value)." };

        var query = new Command("query", "Show a value, or a key's subkeys and values.") { key, value, home };
        query.SetAction(parse => WithClient(parse.GetValue(home), client =>
        {
            string path = parse.GetValue(key)!;
            string? name = parse.GetValue(value);
            if (name is not null)
            {
                Status s = client.QueryValue(path, name, out RegistryValueType type, out ReadOnlyMemory<byte> data);
                if (s.IsError)
                {
                    return Fail(s, path, name);
                }

                Console.WriteLine($"{(name.Length == 0 ? "(default)" : name)}  {type}  {RegistryClient.Format(type, data.Span)}");
                return 0;
            }

            Status k = client.EnumerateKeys(path, out IReadOnlyList<string> subkeys);
            if (k.IsError)
            {
                return Fail(k, path, null);
            }

            Console.WriteLine(path);
            foreach (string sub in subkeys)
            {
                Console.WriteLine("  " + sub + @"\");
            }

            client.EnumerateValues(path, out IReadOnlyList<string> values);
            foreach (string v in values)
            {
                client.QueryValue(path, v, out RegistryValueType type, out ReadOnlyMemory<byte> data);
                Console.WriteLine($"  {(v.Length == 0 ? "(default)" : v)}  {type}  {RegistryClient.Format(type, data.Span)}");
            }

            return 0;
        }));

        var setName = new Option<string>("--value", "-v") { Description = "The value name (\"\" for the default value).", Required = true };
        var type = new Option<string>("--type", "-t") { Description = "String, ExpandString, DWord, QWord, Binary (hex) or MultiString (items separated by '|').", DefaultValueFactory = _ => "String" };
        var data = new Option<string>("--data", "-d") { Description = "The data.", Required = true };
        var set = new Command("set", "Set a value (the key is created if needed).") { key, setName, type, data, home };
        set.SetAction(parse => WithClient(parse.GetValue(home), client =>
        {
            string path = parse.GetValue(key)!;
            string name = parse.GetValue(setName)!;
            if (!Enum.TryParse(parse.GetValue(type), ignoreCase: true, out RegistryValueType t) || !Enum.IsDefined(t))
            {
                Console.Error.WriteLine($"palisade: unknown value type '{parse.GetValue(type)}'");
                return 2;
            }

            if (!TryEncode(t, parse.GetValue(data)!, out byte[] bytes))
            {
                Console.Error.WriteLine($"palisade: '{parse.GetValue(data)}' is not valid {t} data");
                return 2;
            }

            Status c = client.CreateKey(path, out _);
            if (c.IsError)
            {
                return Fail(c, path, null);
            }

            Status s = client.SetValue(path, name, t, bytes);
            return s.IsError ? Fail(s, path, name) : 0;
        }));

        var delete = new Command("delete", "Delete a value (with --value) or a key without subkeys.") { key, value, home };
        delete.SetAction(parse => WithClient(parse.GetValue(home), client =>
        {
            string path = parse.GetValue(key)!;
            string? name = parse.GetValue(value);
            Status s = name is null ? client.DeleteKey(path) : client.DeleteValue(path, name);
            return s.IsError ? Fail(s, path, name) : 0;
        }));

        reg.Subcommands.Add(query);
        reg.Subcommands.Add(set);
        reg.Subcommands.Add(delete);
        return reg;
    }

    /// <summary>Runs <paramref name="body"/> against the running kernel that holds the hive (through its control
    /// socket, so that its registry callbacks decide and its drivers see the change), or against the hive file when
    /// no kernel runs.</summary>
    private static int WithClient(string? home, Func<RegistryClient, int> body)
    {
        using RegistrySession? session = KernelBoot.OpenRegistry(home);
        return session is null ? 1 : body(session.Client);
    }

    private static int Fail(Status s, string path, string? name)
    {
        Console.Error.WriteLine($"palisade: {path}{(name is null ? "" : " value '" + name + "'")}: {s.Message} ({s.Name})");
        return 1;
    }

    private static bool TryEncode(RegistryValueType t, string text, out byte[] bytes)
    {
        bytes = [];
        switch (t)
        {
            case RegistryValueType.String or RegistryValueType.ExpandString:
                bytes = RegistryClient.EncodeString(text);
                return true;
            case RegistryValueType.MultiString:
                bytes = RegistryClient.EncodeString(string.Join('\0', text.Split('|')) + "\0");
                return true;
            case RegistryValueType.DWord when uint.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out uint d):
                bytes = BitConverter.GetBytes(d);
                return true;
            case RegistryValueType.QWord when ulong.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong q):
                bytes = BitConverter.GetBytes(q);
                return true;
            case RegistryValueType.Binary or RegistryValueType.None:
                try
                {
                    bytes = Convert.FromHexString(text);
                    return true;
                }
                catch (FormatException)
                {
                    return false;
                }

            default:
                return false;
        }
    }
}
