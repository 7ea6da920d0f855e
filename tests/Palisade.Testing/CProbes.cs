using System.Diagnostics;

namespace Palisade.Testing;

/// <summary>Small C programs the tests run as guests (attacks, probes): compiled with gcc once per test run.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class CProbes
{
    private static readonly SemaphoreSlim CompileLock = new(1, 1);
    private static readonly string Directory = System.IO.Directory.CreateTempSubdirectory("palisade-probes-").FullName;

    /// <summary>The folder the probes are built in (readable by every user, so a guest that dropped to another uid can run them).</summary>
    public static string Folder => Directory;

    /// <summary>Compiles <paramref name="source"/> as <paramref name="name"/> once per test run; returns its path, or null when gcc is missing.</summary>
    /// <exception cref="InvalidOperationException">gcc rejected the source.</exception>
    public static string? Compile(string name, string source)
    {
        CompileLock.Wait();
        try
        {
            string binary = Path.Combine(Directory, name);
            if (File.Exists(binary))
            {
                return binary;
            }

            string file = binary + ".c";
            File.WriteAllText(file, source);
            using var gcc = Process.Start(new ProcessStartInfo("gcc", ["-O1", "-pthread", "-o", binary, file]) { RedirectStandardError = true });
            if (gcc is null)
            {
                return null;
            }

            string errors = gcc.StandardError.ReadToEnd();
            gcc.WaitForExit();
            if (gcc.ExitCode != 0)
            {
                throw new InvalidOperationException($"gcc failed for {name}: {errors}");
            }

            // Temporary folders are private to their creator: let a guest of another uid reach the probe.
            File.SetUnixFileMode(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            return binary;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
        finally
        {
            CompileLock.Release();
        }
    }
}
