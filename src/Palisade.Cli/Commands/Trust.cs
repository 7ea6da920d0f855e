// palisade trust add | list | remove: the kernel owner's side of driver signing, the keys whose signatures the
// protected flavor accepts.
using System.CommandLine;
using System.Text;
using Palisade.Kernel.Drivers;

namespace Palisade.Cli.Commands;

/// <summary>The <c>palisade trust</c> command.</summary>
internal static class TrustCommand
{
    public static Command Create()
    {
        var home = DriverCommand.HomeOption();
        var command = new Command("trust", "Manage the trust store: the public keys whose driver signatures are accepted.");
        command.Options.Add(home);
        command.Subcommands.Add(CreateAdd(home));
        command.Subcommands.Add(CreateList(home));
        command.Subcommands.Add(CreateRemove(home));
        return command;
    }

    private static TrustStore Open(ParseResult parseResult, Option<string?> home) =>
        TrustStore.ForHome(PalisadeHome.Resolve(parseResult.GetValue(home)));

    private static Command CreateAdd(Option<string?> home)
    {
        var keyFile = new Argument<string>("PUBKEYFILE") { Description = "A public key file (PEM), such as the .pub written by driver keygen." };
        var name = new Option<string?>("--name") { Description = "The name to list the key under (default: the file name without .pub)." };
        var command = new Command("add", "Trust a public key.") { keyFile, name };
        command.SetAction(parseResult => DriverCommand.Run(parseResult, writer =>
        {
            string path = parseResult.GetRequiredValue(keyFile);
            string keyName = parseResult.GetValue(name) ?? DefaultName(path);
            TrustedKey key = Open(parseResult, home).Add(File.ReadAllText(path, Encoding.UTF8), keyName, path);
            writer.WriteLine($"trusted {key.Name} ({key.KeyId})");
            return 0;
        }));
        return command;
    }

    private static Command CreateList(Option<string?> home)
    {
        var command = new Command("list", "List the trusted keys: name and key id.");
        command.SetAction(parseResult => DriverCommand.Run(parseResult, writer =>
        {
            TrustStore store = Open(parseResult, home);
            IReadOnlyList<TrustedKey> keys = store.List();
            if (keys.Count == 0)
            {
                writer.WriteLine($"no trusted keys in {store.Directory}");
                return 0;
            }

            int width = 4;
            foreach (TrustedKey key in keys)
            {
                width = Math.Max(width, key.Name.Length);
            }

            writer.WriteLine("NAME".PadRight(width) + "  KEY ID");
            foreach (TrustedKey key in keys)
            {
                writer.WriteLine(key.Name.PadRight(width) + "  " + key.KeyId);
            }

            return 0;
        }));
        return command;
    }

    private static Command CreateRemove(Option<string?> home)
    {
        var which = new Argument<string>("NAME|ID") { Description = "The name or key id of the key to remove." };
        var command = new Command("remove", "Stop trusting a key.") { which };
        command.SetAction(parseResult => DriverCommand.Run(parseResult, writer =>
        {
            TrustedKey key = Open(parseResult, home).Remove(parseResult.GetRequiredValue(which));
            writer.WriteLine($"removed {key.Name} ({key.KeyId})");
            return 0;
        }));
        return command;
    }

    private static string DefaultName(string path)
    {
        string file = Path.GetFileName(path);
        return file.EndsWith(SigningKeys.PublicKeySuffix, StringComparison.Ordinal) ? file[..^SigningKeys.PublicKeySuffix.Length] : file;
    }
}
