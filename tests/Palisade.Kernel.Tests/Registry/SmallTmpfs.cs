// A tiny tmpfs mounted for one test, so that a hive can really run out of disk space. Mounting needs root (or
// CAP_SYS_ADMIN); TmpfsFactAttribute skips the test, with the reason, where mounting is not possible.
using System.Diagnostics;

namespace Palisade.Kernel.Tests.Registry;

internal sealed class SmallTmpfs : IDisposable
{
    public SmallTmpfs(int kibibytes)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("palisade-tmpfs-").FullName;
        (int exit, string error) = Run("mount", "-t", "tmpfs", "-o", $"size={kibibytes}k", "tmpfs", Directory);
        if (exit != 0)
        {
            System.IO.Directory.Delete(Directory);
            Assert.Fail("mount of a tmpfs failed: " + error);
        }
    }

    public string Directory { get; }

    /// <summary>True when this process can mount a tmpfs; probed once by a real mount.</summary>
    public static bool CanMount => Probe.Value;

    private static Lazy<bool> Probe { get; } = new(() =>
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return false;
        }

        try
        {
            new SmallTmpfs(64).Dispose();
            return true;
        }
        catch (Exception ex) when (ex is Xunit.Sdk.XunitException or System.ComponentModel.Win32Exception)
        {
            return false;
        }
    });

    public void Dispose()
    {
        Run("umount", Directory);
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    private static (int Exit, string Error) Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start)!;
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, error);
    }
}

/// <summary>A fact that needs to mount a tmpfs; skipped with the reason when the process cannot.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class TmpfsFactAttribute : FactAttribute
{
    public TmpfsFactAttribute()
    {
        if (!SmallTmpfs.CanMount)
        {
            Skip = "needs root (CAP_SYS_ADMIN) to mount a small tmpfs that can fill up";
        }
    }
}
