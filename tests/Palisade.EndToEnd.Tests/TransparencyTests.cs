namespace Palisade.EndToEnd.Tests;

/// <summary>
/// With drivers that allow everything, real programs behave under <c>palisade run</c> exactly as when run directly:
/// same output, same exit status. The antivirus subscribes to opens, execs and cleanups; the firewall (with a rules
/// file that allows everything) to every network layer; self-protection (protecting nothing the tests touch) to
/// process access, path operations and the registry — so every mediated family is on the path.
/// </summary>
public sealed class TransparencyTests : IDisposable
{
    private readonly PalisadeRun _p = new();
    private readonly string[] _allowAll;

    public TransparencyTests()
    {
        string rules = Path.Combine(_p.Work, "allow.rules");
        File.WriteAllText(rules, "allow out any\nallow in any\n");
        _allowAll =
        [
            "--driver", PalisadeRun.Driver("antivirus"),
            "--driver", PalisadeRun.Driver("firewall"), "--param", "firewall.rules=" + rules,
            "--driver", PalisadeRun.Driver("selfprotect"), "--param", "selfprotect.processes=/nonexistent/product/",
            "--param", "selfprotect.files=/nonexistent/product",
        ];
    }

    public void Dispose() => _p.Dispose();

    private void Same(params string[] program)
    {
        ProcessResult direct = _p.Direct(program);
        ProcessResult mediated = _p.Run(_allowAll, program);
        Assert.True(direct.ExitCode == mediated.ExitCode, $"exit {direct.ExitCode} directly, {mediated.ExitCode} under palisade; stderr: {mediated.Stderr}");
        Assert.Equal(direct.Stdout, mediated.Stdout);
    }

    [Fact]
    public void A_shell_pipeline_gives_the_same_output_and_exit_status()
    {
        Same("/bin/sh", "-c", "seq 1 500 | grep 7 | sort -r | head -n 20 | wc -l; printf 'a\\nb\\n' | tr a-z A-Z; exit 7");
    }

    [Fact]
    public void Coreutils_on_files_behave_the_same()
    {
        Same("/bin/sh", "-c",
            "set -e; d=$(mktemp -d); cd $d; echo one > a; cp a b; mv b c; cat a c; chmod 600 c; stat -c %a c; " +
            "ln -s c d; readlink d; truncate -s 3 a; wc -c < a; rm a c d; ls -A | wc -l; cd /; rmdir $d; echo done");
    }

    [Fact]
    public void Python_files_sockets_and_subprocesses_behave_the_same()
    {
        const string script = """
import os, socket, subprocess, tempfile, threading
d = tempfile.mkdtemp()
p = os.path.join(d, "f.txt")
with open(p, "w") as f: f.write("x" * 1000)
print(os.path.getsize(p))
os.rename(p, p + ".2"); os.unlink(p + ".2"); os.rmdir(d)
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
port = srv.getsockname()[1]
def serve():
    c, _ = srv.accept(); c.sendall(c.recv(100).upper()); c.close()
t = threading.Thread(target=serve); t.start()
cl = socket.create_connection(("127.0.0.1", port)); cl.sendall(b"ping"); print(cl.recv(100).decode()); cl.close(); t.join()
print(subprocess.run(["sh", "-c", "echo child; exit 4"], capture_output=True, text=True).stdout.strip())
print(subprocess.call(["false"]))
""";
        Same("python3", "-c", script);
    }

    [Fact]
    public void A_gcc_compile_and_run_behaves_the_same()
    {
        File.WriteAllText(Path.Combine(_p.Work, "hello.c"), "#include <stdio.h>\nint main(void){puts(\"hello from C\");return 3;}\n");
        Same("/bin/sh", "-c", "gcc -O1 -o hello hello.c && ./hello; echo \"status $?\"; rm -f hello");
    }

    [Fact]
    public void Git_init_and_commit_behave_the_same()
    {
        Same("/bin/sh", "-c",
            "set -e; d=$(mktemp -d); cd $d; git init -q .; git config user.email t@example.com; git config user.name T; " +
            "echo content > file; git add file; git commit -q -m first; git log --format=%s; git cat-file -p HEAD:file; cd /; rm -rf $d");
    }

    [Fact]
    public void Standard_input_passes_through()
    {
        ProcessResult r = _p.Exec("dotnet", [Path.Combine(AppContext.BaseDirectory, "palisade.dll"), "run", .. PalisadeRun.Placed(_allowAll), "--", "/bin/sh", "-c", "tr a-z A-Z"], _p.Work, stdin: "piped input\n");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("PIPED INPUT\n", r.Stdout);
    }

    [Fact]
    public void Opens_that_no_filter_looks_at_after_the_fact_behave_the_same()
    {
        // Self-protection alone decides opens in its pre-create callback and asks for no post callback: the supervisor
        // then skips the post decision and the file's identity, and must still give the same status flags and the
        // same blocking FIFO semantics.
        string[] selfProtectOnly =
        [
            "--driver", PalisadeRun.Driver("selfprotect"), "--param", "selfprotect.processes=/nonexistent/product/",
            "--param", "selfprotect.files=/nonexistent/product",
        ];
        string script = "import fcntl, os\n"
            + "for flags in (os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_NONBLOCK, os.O_WRONLY | os.O_APPEND):\n"
            + "    fd = os.open('/etc/hostname' if flags & 3 == 0 else 'out.txt', flags | os.O_CREAT if flags & 3 else flags, 0o644)\n"
            + "    print(oct(fcntl.fcntl(fd, fcntl.F_GETFL) & ~0o100000))\n"
            + "    os.close(fd)\n"
            + "os.mkfifo('pipe')\n"
            + "if os.fork() == 0:\n"
            + "    with open('pipe', 'w') as w: w.write('through the fifo')\n"
            + "    os._exit(0)\n"
            + "with open('pipe') as r: print(r.read())\n"
            + "os.wait()\n"
            + "os.unlink('pipe')\n";
        ProcessResult direct = _p.Direct("python3", "-c", script);
        ProcessResult mediated = _p.Run(selfProtectOnly, "python3", "-c", script);
        Assert.True(direct.ExitCode == 0 && mediated.ExitCode == 0, $"exit {direct.ExitCode} directly, {mediated.ExitCode} under palisade; stderr: {direct.Stderr} {mediated.Stderr}");
        Assert.Equal(direct.Stdout, mediated.Stdout);
    }

    [Fact]
    public void The_palisade_command_s_own_settings_do_not_reach_the_guest()
    {
        // The ./palisade wrapper adds PALISADE_REPO and the runtime's tiering delay for palisade itself; the guest gets the
        // caller's environment (here the harness's PALISADE_HOME and LC_ALL) without them.
        string wrapper = Path.Combine(PalisadeRun.Repo, "palisade");

        ProcessResult r = _p.Exec(wrapper, ["run", .. _allowAll, "--", "/usr/bin/env"], _p.Work);

        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}; stderr: {r.Stderr}");
        string[] variables = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("PALISADE_HOME=" + _p.Home, variables);
        Assert.Contains("LC_ALL=C", variables);
        Assert.DoesNotContain(variables, v => v.StartsWith("PALISADE_WRAPPER_ENV=", StringComparison.Ordinal));
        Assert.DoesNotContain(variables, v => v.StartsWith("PALISADE_REPO=", StringComparison.Ordinal));
        Assert.DoesNotContain(variables, v => v.StartsWith("DOTNET_TC_CallCountingDelayMs=", StringComparison.Ordinal));
    }

    [Fact]
    public void A_program_killed_by_a_signal_gives_128_plus_the_signal()
    {
        ProcessResult r = _p.Run(_allowAll, "/bin/sh", "-c", "kill -TERM $$");
        Assert.Equal(128 + 15, r.ExitCode);
    }
}
