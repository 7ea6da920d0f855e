namespace Palisade.Kernel.Drivers;

/// <summary>
/// Where Palisade keeps its state: the folder given with <c>--home</c>, else <c>$PALISADE_HOME</c>, else
/// <c>~/.palisade</c>. The trust store is its <c>trust</c> subfolder.
/// </summary>
internal static class PalisadeHome
{
    /// <summary>The environment variable that overrides the default home folder.</summary>
    public const string EnvironmentVariable = "PALISADE_HOME";

    /// <summary>Resolves the home folder to a full path.</summary>
    /// <param name="explicitHome">The folder given on the command line, or null.</param>
    public static string Resolve(string? explicitHome)
    {
        if (!string.IsNullOrEmpty(explicitHome))
        {
            return Path.GetFullPath(explicitHome);
        }

        string? fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            return Path.GetFullPath(fromEnvironment);
        }

        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".palisade");
    }

    /// <summary>The trust store folder of a home folder.</summary>
    public static string TrustDirectory(string home) => Path.Combine(home, "trust");
}
