// A directory of its own for each test's hive files, deleted afterwards.
namespace Palisade.Kernel.Tests.Registry;

internal sealed class TempHive : IDisposable
{
    public TempHive()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("palisade-hive-").FullName;
        Path = System.IO.Path.Combine(Directory, "machine.hive");
    }

    public string Directory { get; }

    /// <summary>Where the hive file goes (it does not exist until opened).</summary>
    public string Path { get; }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}
