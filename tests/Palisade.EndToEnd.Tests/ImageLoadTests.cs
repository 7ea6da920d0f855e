using System.Text;

namespace Palisade.EndToEnd.Tests;

/// <summary>
/// Every image that runs is an image load: a <c>#!</c> script's interpreter, the ELF interpreter a program names, a
/// program started through the dynamic loader and a library a program dlopen()s reach the sample drivers' image-load
/// callbacks before they run code, and a denial stops them. The denied images are real programs and libraries built by gcc
/// here, carrying a marker that the antivirus is given as a signature; the antivirus does not scan plain reads
/// (scanOnRead=false), so only the image loads can find them. Each denial is tried by a root guest and by a guest that
/// dropped to uid 65534.
/// </summary>
public sealed class ImageLoadTests : IDisposable
{
    private const string Marker = "PALISADE-IMAGE-LOAD-TEST-MARKER-7f3a";
    private const string Nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
    private readonly PalisadeRun _run = new();
    private readonly string _dir;

    public ImageLoadTests()
    {
        _dir = Path.Combine(_run.Work, "images");
        Directory.CreateDirectory(_dir);
        File.SetUnixFileMode(_run.Work, Parity.Mode("755"));
        File.SetUnixFileMode(_dir, Parity.Mode("755"));
        File.WriteAllText(Path.Combine(_dir, "signatures"), "hex " + Convert.ToHexString(Encoding.ASCII.GetBytes(Marker)) + " Test.ImageMarker\n");
    }

    public void Dispose() => _run.Dispose();

    private string[] Antivirus =>
    [
        "--driver", PalisadeRun.Driver("antivirus"), "--param", "antivirus.signatures=" + Path.Combine(_dir, "signatures"),
        "--param", "antivirus.scanOnRead=false",
    ];

    private static string Prefix(string guest) => guest == "nobody" ? Nobody : "";

    /// <summary>Compiles C source into <c>images/NAME</c> with gcc and the given options.</summary>
    private string Compile(string name, string source, params string[] options)
    {
        string c = Path.Combine(_dir, name + ".c");
        string output = Path.Combine(_dir, name);
        File.WriteAllText(c, source);
        ProcessResult gcc = ProcessRunner.Run("gcc", ["-O1", "-o", output, c, .. options], _dir);
        Assert.True(gcc.ExitCode == 0, "gcc failed for " + name + ": " + gcc.Stderr);
        return output;
    }

    /// <summary>A program that prints "NAME ran"; <paramref name="marked"/> puts the antivirus's marker in it.</summary>
    private string Program(string name, bool marked) => Compile(name,
        "#include <stdio.h>\n"
        + "const char mark[] = \"" + (marked ? Marker : "clean") + "\";\n"
        + "int main(int argc, char **argv) { printf(\"" + name + " ran %d\\n\", argc); return mark[0] == 0; }\n");

    /// <summary>A shared library; <paramref name="marked"/> puts the antivirus's marker in it.</summary>
    private string Library(string name, bool marked) => Compile(name,
        "const char mark[] = \"" + (marked ? Marker : "clean") + "\";\nint image_load_test(void) { return mark[0]; }\n",
        "-shared", "-fPIC");

    /// <summary>A program that dlopen()s its argument and prints the outcome.</summary>
    private string Loader() => Compile("loader",
        "#include <stdio.h>\n#include <dlfcn.h>\n"
        + "int main(int argc, char **argv) {\n"
        + "  void *h = dlopen(argv[1], RTLD_NOW);\n"
        + "  if (h == NULL) { printf(\"dlopen NULL: %s\\n\", dlerror()); return 3; }\n"
        + "  printf(\"dlopen ok\\n\"); return 0;\n}\n",
        "-ldl");

    private string Script(string name, string firstLine)
    {
        string script = Path.Combine(_dir, name);
        File.WriteAllText(script, firstLine + "\necho script body ran\n");
        File.SetUnixFileMode(script, Parity.Mode("755"));
        return script;
    }

    private ProcessResult Guest(string script, string[] drivers) => _run.Run(drivers, "/bin/sh", "-c", script);

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData("root")]
    [InlineData("nobody")]
    public void A_script_whose_interpreter_is_a_denied_binary_is_refused_with_EACCES(string guest)
    {
        string interpreter = Program("marked-interpreter", marked: true);
        string script = Script("script", "#!" + interpreter + " --flag");

        ProcessResult r = Guest(Prefix(guest) + script + "; echo exit=$?", Antivirus);

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("exit=126\n", r.Stdout);
        Assert.Contains("Permission denied", r.Stderr, StringComparison.Ordinal);
    }

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData("root")]
    [InlineData("nobody")]
    public void A_script_whose_nested_interpreter_is_a_denied_binary_is_refused_with_EACCES(string guest)
    {
        string interpreter = Program("marked-interpreter", marked: true);
        string inner = Script("inner", "#!" + interpreter);
        string outer = Script("outer", "#!  " + inner);

        ProcessResult r = Guest(Prefix(guest) + outer + "; echo exit=$?", Antivirus);

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("exit=126\n", r.Stdout);
    }

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData("root")]
    [InlineData("nobody")]
    public void A_program_whose_ELF_interpreter_is_a_denied_image_is_refused_with_EACCES(string guest)
    {
        // A working dynamic loader with the marker appended: Linux would run it, the antivirus must not let it.
        string loader = Path.Combine(_dir, "marked-ld.so");
        File.Copy(RealDynamicLoader, loader);
        File.AppendAllText(loader, Marker);
        File.SetUnixFileMode(loader, Parity.Mode("755"));
        string program = Compile("uses-marked-ld", "#include <stdio.h>\nint main(void) { puts(\"program ran\"); return 0; }\n",
            "-Wl,--dynamic-linker=" + loader);
        Assert.Equal("program ran\n", _run.Direct(program).Stdout);

        ProcessResult r = Guest(Prefix(guest) + program + "; echo exit=$?", Antivirus);

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("exit=126\n", r.Stdout);
        Assert.Contains("Permission denied", r.Stderr, StringComparison.Ordinal);
    }

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData("root")]
    [InlineData("nobody")]
    public void A_denied_program_started_through_the_dynamic_loader_is_refused(string guest)
    {
        string evil = Program("marked-program", marked: true);

        ProcessResult r = Guest(Prefix(guest) + RealDynamicLoader + " " + evil + "; echo exit=$?", Antivirus);

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.DoesNotContain("marked-program ran", r.Stdout, StringComparison.Ordinal);
        Assert.Equal("exit=127\n", r.Stdout);
        Assert.Contains("failed to map segment", r.Stderr, StringComparison.Ordinal);
    }

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData("root")]
    [InlineData("nobody")]
    public void A_dlopen_of_a_denied_library_returns_NULL(string guest)
    {
        string loader = Loader();
        string library = Library("libmarked.so", marked: true);

        ProcessResult r = Guest(Prefix(guest) + loader + " " + library + "; echo exit=$?", Antivirus);

        Assert.True(r.ExitCode == 0, r.Stderr);
        // glibc reports a refused mapping without its errno: "failed to map segment from shared object".
        Assert.Equal("dlopen NULL: " + library + ": failed to map segment from shared object\nexit=3\n", r.Stdout);
    }

    [RootGuestTheory("gcc", "setpriv")]
    [InlineData("root")]
    [InlineData("nobody")]
    public void Making_a_mapping_of_a_denied_file_executable_fails_with_EACCES(string guest)
    {
        string library = Library("libmarked.so", marked: true);
        string protector = Compile("protector",
            "#include <stdio.h>\n#include <errno.h>\n#include <fcntl.h>\n#include <string.h>\n#include <sys/mman.h>\n"
            + "int main(int argc, char **argv) {\n"
            + "  int fd = open(argv[1], O_RDONLY);\n"
            + "  void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);\n"
            + "  if (fd < 0 || p == MAP_FAILED) { perror(\"map\"); return 2; }\n"
            + "  int r = mprotect(p, 4096, PROT_READ | PROT_EXEC);\n"
            + "  printf(\"mprotect %d %s\\n\", r, r == 0 ? \"ok\" : strerror(errno));\n"
            + "  void *anonymous = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n"
            + "  printf(\"anonymous %d\\n\", mprotect(anonymous, 4096, PROT_READ | PROT_EXEC));\n"
            + "  return 0;\n}\n");

        ProcessResult r = Guest(Prefix(guest) + protector + " " + library, Antivirus);

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("mprotect -1 Permission denied\nanonymous 0\n", r.Stdout);
    }

    [GuestFact("gcc", "/usr/bin/python3")]
    public void A_memfd_script_executed_through_its_descriptor_whose_interpreter_is_denied_is_refused_with_EACCES()
    {
        string interpreter = Program("marked-interpreter", marked: true);
        string python = Path.Combine(_dir, "fexecve.py");
        File.WriteAllText(python, string.Join('\n',
            "import os",
            "fd = os.memfd_create('script', 0)",
            "os.write(fd, b'#!" + interpreter + "\\necho memfd script ran\\n')",
            "try:",
            "    os.execve(fd, ['script'], {})",
            "except PermissionError:",
            "    print('denied')",
            ""));

        ProcessResult r = Guest("/usr/bin/python3 " + python, Antivirus);

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("denied\n", r.Stdout);
    }

    [GuestFact("gcc", "/usr/bin/python3")]
    public void Clean_programs_scripts_and_libraries_run_unchanged()
    {
        string program = Program("clean-program", marked: false);
        string script = Script("clean-script", "#!" + program + " one");
        string loader = Loader();
        string library = Library("libclean.so", marked: false);
        string shell = Script("shell-script", "#!/bin/sh");

        ProcessResult r = Guest(
            $"{program}; {script}; {loader} {library}; {shell}; {RealDynamicLoader} {program}; /usr/bin/python3 -c 'import _ctypes, _json; print(\"python ok\")'",
            Antivirus);

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("clean-program ran 1\nclean-program ran 3\ndlopen ok\nscript body ran\nclean-program ran 1\npython ok\n", r.Stdout);
    }

    [GuestFact("gcc")]
    public void Enforced_application_control_refuses_a_library_the_allow_list_does_not_name()
    {
        string loader = Loader();
        string library = Library("libunlisted.so", marked: false);
        string list = Path.Combine(_dir, "allow.list");
        File.WriteAllText(list, "path /usr/\npath " + loader + "\n");
        string events = Path.Combine(_run.Work, "events.jsonl");

        ProcessResult r = _run.Run(
            ["--driver", PalisadeRun.Driver("appcontrol"), "--param", "appcontrol.allowlist=" + list, "--param", "appcontrol.mode=enforce", "--events", events],
            loader, library);

        Assert.Equal(3, r.ExitCode);
        Assert.StartsWith("dlopen NULL: ", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("denied " + library + " (executable mapping)", File.ReadAllText(events), StringComparison.Ordinal);
    }

    /// <summary>The dynamic loader programs name (PT_INTERP), as a real file.</summary>
    private static string RealDynamicLoader => new FileInfo("/lib64/ld-linux-x86-64.so.2").ResolveLinkTarget(returnFinalTarget: true)?.FullName
        ?? "/lib64/ld-linux-x86-64.so.2";
}
