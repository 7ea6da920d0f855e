using System.CommandLine;
using Palisade.Api;

namespace Palisade.Cli.Commands;

/// <summary><c>palisade api list|show|docs</c>: the driver API's reference from its own documentation.</summary>
internal static class ApiCommand
{
    public static Command Create()
    {
        var api = new Command("api", "The driver API: list its types, show one, or write the reference pages.");

        var list = new Command("list", "List every API type with its area, state and version.");
        list.SetAction(_ =>
        {
            var reference = new ApiReference();
            Console.WriteLine($"{"name",-32} {"area",-15} {"state",-9} {"since",-6} scenarios");
            foreach (ApiType t in reference.Types)
            {
                Console.WriteLine($"{t.Type.Name,-32} {t.Info.Area,-15} {t.Info.State,-9} {t.Info.Introduced,-6} {string.Join(", ", t.Info.Scenarios)}");
            }

            return 0;
        });

        var nameArg = new Argument<string>("name") { Description = "A type name, such as IFilterManager or Status." };
        var show = new Command("show", "Show one API type: what it does, its members, their arguments and returns.") { nameArg };
        show.SetAction(parse =>
        {
            var reference = new ApiReference();
            string name = parse.GetValue(nameArg)!;
            ApiType? t = reference.Find(name);
            if (t is null)
            {
                Console.Error.WriteLine($"palisade: no API type is named '{name}'; 'palisade api list' lists them");
                return 2;
            }

            Console.Write(reference.Render(t, "#"));
            return 0;
        });

        var outOption = new Option<DirectoryInfo>("--out") { Description = "The folder to write the pages to.", Required = true };
        var checkOption = new Option<bool>("--check") { Description = "Compare with the folder instead of writing; exit 1 when it is stale." };
        var docs = new Command("docs", "Write (or check) the API reference pages, one per area.") { outOption, checkOption };
        docs.SetAction(parse =>
        {
            DirectoryInfo dir = parse.GetValue(outOption)!;
            bool check = parse.GetValue(checkOption);
            SortedDictionary<string, string> pages = new ApiReference().Pages();
            if (check)
            {
                var stale = pages.Where(p => !File.Exists(Path.Combine(dir.FullName, p.Key)) || File.ReadAllText(Path.Combine(dir.FullName, p.Key)) != p.Value)
                    .Select(p => p.Key).ToList();
                stale.AddRange(dir.Exists ? dir.GetFiles("*.md").Select(f => f.Name).Where(n => !pages.ContainsKey(n)) : []);
                if (stale.Count > 0)
                {
                    Console.Error.WriteLine("palisade: the API reference is stale: " + string.Join(", ", stale) + "; run ./palisade api docs --out docs/api");
                    return 1;
                }

                Console.WriteLine($"API reference is current ({pages.Count} pages)");
                return 0;
            }

            dir.Create();
            foreach (KeyValuePair<string, string> p in pages)
            {
                File.WriteAllText(Path.Combine(dir.FullName, p.Key), p.Value);
            }

            Console.WriteLine($"wrote {pages.Count} pages to {dir.FullName}");
            return 0;
        });

        api.Subcommands.Add(list);
        api.Subcommands.Add(show);
        api.Subcommands.Add(docs);
        return api;
    }
}
