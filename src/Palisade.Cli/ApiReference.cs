using System.Reflection;
using System.Text;
using System.Xml.Linq;
using Palisade.Api;

namespace Palisade.Cli;

/// <summary>
/// The driver API's reference, read from Palisade.Api's own metadata (<see cref="ApiInfoAttribute"/>) and its XML
/// documentation file. Feeds <c>palisade api list|show|docs</c>; the pages under docs/api are its output.
/// </summary>
internal sealed class ApiReference
{
    private readonly Dictionary<string, XElement> _members = new(StringComparer.Ordinal);

    public ApiReference()
    {
        Assembly api = typeof(IDriver).Assembly;
        string xml = Path.ChangeExtension(api.Location, ".xml");
        if (!File.Exists(xml))
        {
            throw new FileNotFoundException("the API documentation file is missing; rebuild Palisade.Api", xml);
        }

        foreach (XElement m in XDocument.Load(xml).Descendants("member"))
        {
            _members[(string)m.Attribute("name")!] = m;
        }

        Types = [.. api.GetExportedTypes()
            .Select(t => (Type: t, Info: t.GetCustomAttribute<ApiInfoAttribute>()))
            .Where(x => x.Info is not null)
            .Select(x => new ApiType(x.Type, x.Info!))
            .OrderBy(x => x.Info.Area).ThenBy(x => x.Type.Name, StringComparer.Ordinal)];
    }

    public IReadOnlyList<ApiType> Types { get; }

    public ApiType? Find(string name) =>
        Types.FirstOrDefault(t => string.Equals(t.Type.Name, name, StringComparison.OrdinalIgnoreCase)
            || string.Equals(t.Type.FullName, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>One Markdown page per area, keyed by file name.</summary>
    public SortedDictionary<string, string> Pages()
    {
        var pages = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var index = new StringBuilder();
        index.Append("# Palisade driver API reference\n\n");
        index.Append("Generated from the XML documentation of `Palisade.Api` by `palisade api docs`; do not edit by hand.\n");
        index.Append("API version ").Append(typeof(IDriver).Assembly.GetName().Version!.ToString(2)).Append(".\n\n");
        index.Append("| area | page | types |\n|---|---|---|\n");
        foreach (IGrouping<ApiArea, ApiType> area in Types.GroupBy(t => t.Info.Area))
        {
            string file = area.Key.ToString().ToLowerInvariant() + ".md";
            var page = new StringBuilder();
            page.Append("# ").Append(area.Key).Append('\n');
            page.Append("\nGenerated from the XML documentation of `Palisade.Api`; do not edit by hand.\n");
            foreach (ApiType t in area)
            {
                page.Append('\n').Append(Render(t, heading: "##"));
            }

            pages[file] = page.ToString();
            index.Append("| ").Append(area.Key).Append(" | [").Append(file).Append("](").Append(file).Append(") | ")
                .Append(string.Join(", ", area.Select(t => t.Type.Name))).Append(" |\n");
        }

        pages["README.md"] = index.ToString();
        return pages;
    }

    /// <summary>Renders a type and its members as Markdown.</summary>
    public string Render(ApiType t, string heading)
    {
        var sb = new StringBuilder();
        sb.Append(heading).Append(' ').Append(t.Type.Name).Append(" (").Append(Kind(t.Type)).Append(")\n\n");
        sb.Append("*Area:* ").Append(t.Info.Area).Append(" · *state:* ").Append(t.Info.State)
          .Append(" · *since:* ").Append(t.Info.Introduced).Append(" · *scenarios:* ")
          .Append(string.Join(", ", t.Info.Scenarios)).Append("\n\n");
        if (_members.TryGetValue("T:" + t.Type.FullName, out XElement? doc))
        {
            AppendDoc(sb, doc);
        }

        if (IsFlags(t.Type))
        {
            sb.Append("*Flags:* the values combine with `|`; each member below is one bit (or a named combination), shown with its value.\n\n");
        }

        string prefix = t.Type.FullName + ".";
        foreach (KeyValuePair<string, XElement> m in _members.Where(m => m.Key.Length > 2 && m.Key[2..].StartsWith(prefix, StringComparison.Ordinal)
                     && !m.Key.StartsWith("T:", StringComparison.Ordinal) && !m.Key[2..][prefix.Length..].Split('(')[0].Contains('.', StringComparison.Ordinal))
                 .OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            string name = m.Key[2..][prefix.Length..].Replace("#ctor", "(constructor)", StringComparison.Ordinal);
            sb.Append(heading).Append("# ").Append(t.Type.Name).Append('.').Append(Shorten(name)).Append(EnumValue(t.Type, m.Key)).Append("\n\n");
            AppendDoc(sb, m.Value);
        }

        return sb.ToString();
    }

    private static string Kind(Type t) =>
        t.IsInterface ? "interface" : IsFlags(t) ? "flags enum" : t.IsEnum ? "enum" : typeof(Delegate).IsAssignableFrom(t) ? "callback" : t.IsValueType ? "struct" : "class";

    private static bool IsFlags(Type t) => t.IsEnum && t.IsDefined(typeof(FlagsAttribute), inherit: false);

    /// <summary>
    /// For a member of a flags enum, its value in hexadecimal (<c> = 0x10</c>), so that a driver sees which bits it sets;
    /// empty for every other member.
    /// </summary>
    private static string EnumValue(Type t, string memberKey)
    {
        if (!IsFlags(t) || !memberKey.StartsWith("F:", StringComparison.Ordinal))
        {
            return "";
        }

        string field = memberKey[(2 + t.FullName!.Length + 1)..];
        ulong value = Convert.ToUInt64(Enum.Parse(t, field), System.Globalization.CultureInfo.InvariantCulture);
        return " = 0x" + value.ToString("X", System.Globalization.CultureInfo.InvariantCulture);
    }

    private static string Shorten(string member) => member.Replace("Palisade.Api.", "", StringComparison.Ordinal)
        .Replace("System.", "", StringComparison.Ordinal).Replace("@", "&", StringComparison.Ordinal);

    private static void AppendDoc(StringBuilder sb, XElement doc)
    {
        if (doc.Element("summary") is { } summary)
        {
            sb.Append(Text(summary)).Append("\n\n");
        }

        var parameters = doc.Elements("param").ToList();
        if (parameters.Count > 0)
        {
            sb.Append("Arguments:\n\n");
            foreach (XElement p in parameters)
            {
                sb.Append("- `").Append((string?)p.Attribute("name")).Append("`: ").Append(Text(p)).Append('\n');
            }

            sb.Append('\n');
        }

        if (doc.Element("returns") is { } returns)
        {
            sb.Append("Returns: ").Append(Text(returns)).Append("\n\n");
        }

        if (doc.Element("remarks") is { } remarks)
        {
            sb.Append(Text(remarks)).Append("\n\n");
        }
    }

    /// <summary>The text of a doc element with its markup turned into Markdown.</summary>
    public static string Text(XElement e)
    {
        var sb = new StringBuilder();
        foreach (XNode n in e.Nodes())
        {
            Node(sb, n);
        }

        return string.Join('\n', sb.ToString().Split('\n').Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries)))).Trim();
    }

    private static void Node(StringBuilder sb, XNode n)
    {
        switch (n)
        {
            case XText t:
                sb.Append(t.Value.Replace('\n', ' ').Replace('\r', ' '));
                break;
            case XElement { Name.LocalName: "see" or "seealso" } see:
                string cref = (string?)see.Attribute("cref") ?? (string?)see.Attribute("langword") ?? "";
                string shortName = cref.Length > 2 && cref[1] == ':' ? cref[2..] : cref;
                shortName = Shorten(shortName.Split('(')[0]);
                sb.Append('`').Append(shortName).Append('`');
                break;
            case XElement { Name.LocalName: "paramref" or "typeparamref" } pr:
                sb.Append('`').Append((string?)pr.Attribute("name")).Append('`');
                break;
            case XElement { Name.LocalName: "c" } c:
                sb.Append('`').Append(c.Value).Append('`');
                break;
            case XElement { Name.LocalName: "b" } b:
                sb.Append("**").Append(Text(b)).Append("**");
                break;
            case XElement { Name.LocalName: "para" } p:
                sb.Append("\n\n").Append(Text(p)).Append("\n\n");
                break;
            case XElement { Name.LocalName: "list" } list:
                bool numbered = (string?)list.Attribute("type") == "number";
                int i = 0;
                sb.Append('\n');
                foreach (XElement item in list.Elements("item"))
                {
                    sb.Append('\n').Append(numbered ? (++i).ToString(System.Globalization.CultureInfo.InvariantCulture) + ". " : "- ").Append(Text(item));
                }

                sb.Append("\n\n");
                break;
            case XElement other:
                sb.Append(Text(other));
                break;
        }
    }
}

/// <summary>One public API type with its life-cycle metadata.</summary>
internal sealed record ApiType(Type Type, ApiInfoAttribute Info);
