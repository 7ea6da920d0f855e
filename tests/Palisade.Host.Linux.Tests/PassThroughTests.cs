using System.Diagnostics;

namespace Palisade.Host.Linux.Tests;

/// <summary>The palisade executable itself (hidden __supervise verb): stdio, exit status and signals as if the program ran directly.</summary>
public sealed class PassThroughTests
{
    [Fact]
    public void Standard_input_and_output_pass_through()
    {
        using var palisade = Start("cat");
        palisade.StandardInput.Write("through stdin and stdout\n");
        palisade.StandardInput.Close();

        string output = palisade.StandardOutput.ReadToEnd();
        palisade.WaitForExit();

        Assert.Equal("through stdin and stdout\n", output);
        Assert.Equal(0, palisade.ExitCode);
    }

    [Fact]
    public void Sigterm_to_palisade_reaches_the_program_and_its_status_is_reported()
    {
        using var palisade = Start("/bin/sh", "-c", "echo ready; exec sleep 60");
        Assert.Equal("ready", palisade.StandardOutput.ReadLine());

        Assert.Equal(0, Kill(palisade.Id, 15));
        palisade.WaitForExit();

        Assert.Equal(128 + 15, palisade.ExitCode);
    }

    private static Process Start(string program, params string[] arguments)
    {
        var launcher = Guest.Launcher;
        var info = new ProcessStartInfo(launcher.Executable)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        foreach (string prefix in launcher.PrefixArguments)
        {
            info.ArgumentList.Add(prefix);
        }

        info.ArgumentList.Add("__supervise");
        info.ArgumentList.Add("--");
        info.ArgumentList.Add(program);
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        return Process.Start(info) ?? throw new InvalidOperationException("palisade did not start");
    }

    private static int Kill(int pid, int signal) => Interop.Libc.Kill(pid, signal);
}
