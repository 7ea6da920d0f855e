namespace Palisade.EndToEnd.Tests;

/// <summary>
/// Runs one script twice, on the same layout of files: natively, then under <c>palisade run</c> with the four sample
/// drivers loaded (antivirus, firewall allowing everything, application control in audit mode, self-protection guarding
/// a folder the scripts never touch), so that every mediated family is on the path and the supervisor performs what
/// the script does. What the script prints (errno names, owners, modes, content) and its exit status must be the same:
/// Palisade adds no authority and takes none away but what a driver denies.
/// </summary>
internal sealed class Parity : IDisposable
{
    private static readonly Lazy<string> ProbeDirectory = new(() =>
    {
        string dir = Directory.CreateTempSubdirectory("palisade-e2e-probes-").FullName;
        File.SetUnixFileMode(dir, (UnixFileMode)Convert.ToInt32("755", 8));
        return dir;
    });

    private static readonly object CompileGate = new();

    public Parity()
    {
        Run = new PalisadeRun();
        File.SetUnixFileMode(Run.Work, (UnixFileMode)Convert.ToInt32("755", 8));
        Native = Path.Combine(Run.Work, "native");
        Guest = Path.Combine(Run.Work, "guest");
        Directory.CreateDirectory(Native);
        Directory.CreateDirectory(Guest);
        File.WriteAllText(Path.Combine(Run.Work, "allow.rules"), "allow out any\nallow in any\n");
        File.WriteAllText(Path.Combine(Run.Work, "allow.list"), "path /**\n");
        Drivers =
        [
            "--driver", PalisadeRun.Driver("antivirus"),
            "--driver", PalisadeRun.Driver("firewall"), "--param", "firewall.rules=" + Path.Combine(Run.Work, "allow.rules"),
            "--driver", PalisadeRun.Driver("appcontrol"), "--param", "appcontrol.allowlist=" + Path.Combine(Run.Work, "allow.list"),
            "--driver", PalisadeRun.Driver("selfprotect"), "--param", "selfprotect.processes=/nonexistent/product/",
            "--param", "selfprotect.files=/nonexistent/product",
        ];
    }

    public PalisadeRun Run { get; }

    /// <summary>Where the native run works (its current directory).</summary>
    public string Native { get; }

    /// <summary>Where the run under palisade works (its current directory).</summary>
    public string Guest { get; }

    /// <summary>The four sample drivers with settings that let everything the scripts do pass.</summary>
    public string[] Drivers { get; }

    /// <summary>Compiles a probe from Probes/NAME.c once per test run; its path (in a folder every user can read).</summary>
    public static string Probe(string name)
    {
        lock (CompileGate)
        {
            string binary = Path.Combine(ProbeDirectory.Value, name);
            if (!File.Exists(binary))
            {
                string source = Path.Combine(PalisadeRun.Repo, "tests", "Palisade.EndToEnd.Tests", "Probes", name + ".c");
                ProcessResult gcc = ProcessRunner.Run("gcc", ["-O1", "-o", binary, source], ProbeDirectory.Value);
                Assert.True(gcc.ExitCode == 0, "gcc failed for " + name + ": " + gcc.Stderr);
            }

            return binary;
        }
    }

    /// <summary>Makes the same layout in both working folders: <paramref name="setup"/> gets each folder.</summary>
    public void Layout(Action<string> setup)
    {
        setup(Native);
        setup(Guest);
    }

    /// <summary>
    /// Runs <c>/bin/sh -c SCRIPT</c> natively in <see cref="Native"/> and under palisade in <see cref="Guest"/>, asserts
    /// the same exit status, standard output and standard error, and returns the run under palisade.
    /// </summary>
    public ProcessResult Same(string script)
    {
        ProcessResult native = Run.Exec("/bin/sh", ["-c", script], Native);
        ProcessResult mediated = Run.Exec(ProcessRunner.DotnetHost, [ProcessRunner.PalisadeDll, "run", .. PalisadeRun.Placed(Drivers), "--", "/bin/sh", "-c", script], Guest);
        Assert.True(native.ExitCode == mediated.ExitCode,
            $"exit {native.ExitCode} natively, {mediated.ExitCode} under palisade\nnative stderr: {native.Stderr}\npalisade stderr: {mediated.Stderr}");
        Assert.Equal(native.Stdout, mediated.Stdout);
        Assert.Equal(native.Stderr, mediated.Stderr);
        return mediated;
    }

    /// <summary>Runs <c>/bin/sh -c SCRIPT</c> under palisade only (with <paramref name="drivers"/>), in <see cref="Guest"/>.</summary>
    public ProcessResult UnderPalisade(string script, params string[] drivers) =>
        Run.Exec(ProcessRunner.DotnetHost, [ProcessRunner.PalisadeDll, "run", .. PalisadeRun.Placed(drivers), "--", "/bin/sh", "-c", script], Guest);

    /// <summary>Changes the owner of a file or folder (root tests).</summary>
    public static void Chown(string path, int uid, int gid)
    {
        ProcessResult r = ProcessRunner.Run("chown", [uid + ":" + gid, path], "/");
        Assert.True(r.ExitCode == 0, "chown failed: " + r.Stderr);
    }

    /// <summary>A mode from octal digits.</summary>
    public static UnixFileMode Mode(string octal) => (UnixFileMode)Convert.ToInt32(octal, 8);

    public void Dispose() => Run.Dispose();
}
