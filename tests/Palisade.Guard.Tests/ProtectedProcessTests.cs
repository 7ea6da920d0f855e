using Palisade.Kernel.BugChecks;

namespace Palisade.Guard.Tests;

/// <summary>
/// The production path, in a real process: the kernel's own sink, the default schedule and the default dump place.
/// No test hook is involved: the guard must stop the process itself.
/// </summary>
public sealed class ProtectedProcessTests
{
    [Fact]
    public void Detoured_kernel_ends_the_process_with_status_109_a_stop_screen_and_a_dump_under_PALISADE_HOME()
    {
        string home = Path.Combine(Path.GetTempPath(), "palisade-home-" + Guid.NewGuid().ToString("N"));
        try
        {
            (int status, string output, string error) = ChildProcess.Run(
                "Palisade.Guard.CrashHost.dll",
                new Dictionary<string, string> { ["PALISADE_HOME"] = home });

            Assert.Equal(BugCheckCodes.ExitStatus, status);
            Assert.Contains("guests stopped", output, StringComparison.Ordinal);
            Assert.Contains("*** STOP: 0x00000109", error, StringComparison.Ordinal);
            string dumpPath = Assert.Single(Directory.GetFiles(Path.Combine(home, "crash"), "bugcheck-0x109-*.json"));
            CrashDump dump = CrashDump.FromJson(File.ReadAllText(dumpPath));
            Assert.Equal("0x1", dump.Region.Type);
            Assert.Equal("Inline Detour", dump.Culprit?.Driver);
        }
        finally
        {
            if (Directory.Exists(home))
            {
                Directory.Delete(home, recursive: true);
            }
        }
    }
}
