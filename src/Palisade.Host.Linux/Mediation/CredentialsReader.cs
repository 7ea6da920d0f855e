using System.Globalization;
using Palisade.Api;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// Reads a thread's credentials from <c>/proc/TID/status</c> (the Uid, Gid, Groups and Cap* lines) at the moment a
/// notification needs them, so that a driver sees what Linux holds then, not what the supervisor cached when the thread
/// was first seen. Exec-time only: it allocates (the text and the snapshot).
/// </summary>
internal static class CredentialsReader
{
    /// <summary>The credentials of thread <paramref name="tid"/>, or null when it is gone or its status is unreadable.</summary>
    public static ProcessCredentials? Read(int tid)
    {
        string text;
        try
        {
            text = File.ReadAllText("/proc/" + tid.ToString(CultureInfo.InvariantCulture) + "/status");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        return Parse(text);
    }

    /// <summary>The credentials in a status text, or null when a line Linux always writes is missing or malformed.</summary>
    public static ProcessCredentials? Parse(string status)
    {
        string? uid = Line(status, "Uid:"), gid = Line(status, "Gid:"), groups = Line(status, "Groups:");
        if (uid is null || gid is null || !Four(uid, out int[] u) || !Four(gid, out int[] g)
            || !Capabilities(status, "CapInh:", out ulong inheritable) || !Capabilities(status, "CapPrm:", out ulong permitted)
            || !Capabilities(status, "CapEff:", out ulong effective) || !Capabilities(status, "CapBnd:", out ulong bounding))
        {
            return null;
        }

        // CapAmb is missing before Linux 4.3: no ambient set then.
        Capabilities(status, "CapAmb:", out ulong ambient);
        var supplementary = new List<int>();
        foreach (string part in (groups ?? "").Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (!uint.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out uint group))
            {
                return null;
            }

            supplementary.Add((int)group);
        }

        return new ProcessCredentials
        {
            RealUserId = u[0],
            EffectiveUserId = u[1],
            SavedUserId = u[2],
            FileSystemUserId = u[3],
            RealGroupId = g[0],
            EffectiveGroupId = g[1],
            SavedGroupId = g[2],
            FileSystemGroupId = g[3],
            SupplementaryGroups = supplementary,
            EffectiveCapabilities = effective,
            PermittedCapabilities = permitted,
            InheritableCapabilities = inheritable,
            AmbientCapabilities = ambient,
            BoundingCapabilities = bounding,
        };
    }

    /// <summary>The value of the line that starts with <paramref name="key"/>, or null.</summary>
    private static string? Line(string status, string key)
    {
        foreach (string line in status.Split('\n'))
        {
            if (line.StartsWith(key, StringComparison.Ordinal))
            {
                return line[key.Length..];
            }
        }

        return null;
    }

    /// <summary>The four ids of a Uid: or Gid: line (real, effective, saved, file system).</summary>
    private static bool Four(string value, out int[] ids)
    {
        string[] parts = value.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
        ids = new int[4];
        if (parts.Length != 4)
        {
            return false;
        }

        for (int i = 0; i < 4; i++)
        {
            if (!uint.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out uint id))
            {
                return false;
            }

            ids[i] = (int)id;
        }

        return true;
    }

    private static bool Capabilities(string status, string key, out ulong set)
    {
        set = 0;
        string? value = Line(status, key);
        return value is not null && ulong.TryParse(value.Trim(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out set);
    }
}
