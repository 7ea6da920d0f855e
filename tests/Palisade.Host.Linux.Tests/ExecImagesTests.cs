using System.Text;
using Palisade.Host.Linux.Supervision;

namespace Palisade.Host.Linux.Tests;

/// <summary>The <c>#!</c> line is read by Linux's rules (fs/binfmt_script.c), from the first 256 bytes of the file.</summary>
public sealed class ExecImagesTests
{
    private static string? Interpreter(string head)
    {
        byte[] buffer = new byte[256];
        byte[] bytes = Encoding.ASCII.GetBytes(head);
        bytes.AsSpan(0, Math.Min(bytes.Length, 256)).CopyTo(buffer);
        byte[] name = new byte[4097];
        int length = ExecImages.ScriptInterpreter(buffer, name);
        return length == 0 ? null : Encoding.ASCII.GetString(name, 0, length);
    }

    [Theory]
    [InlineData("#!/bin/sh\necho\n", "/bin/sh")]
    [InlineData("#! \t/usr/bin/env python3 -u\n", "/usr/bin/env")]
    [InlineData("#!/bin/sh   \n", "/bin/sh")]
    [InlineData("#!interp\n", "interp")]
    [InlineData("#!/bin/sh", "/bin/sh")]
    public void The_interpreter_is_the_first_word_after_the_marker(string head, string expected)
    {
        Assert.Equal(expected, Interpreter(head));
    }

    [Theory]
    [InlineData("#!\n")]
    [InlineData("#!   \t \n")]
    public void A_line_without_an_interpreter_names_none(string head)
    {
        Assert.Null(Interpreter(head));
    }

    [Fact]
    public void A_line_longer_than_256_bytes_names_its_interpreter_when_the_name_ends_inside()
    {
        Assert.Equal("/bin/sh", Interpreter("#!/bin/sh " + new string('a', 300) + "\n"));
    }

    [Fact]
    public void A_name_cut_by_the_256_byte_limit_names_none()
    {
        Assert.Null(Interpreter("#!/" + new string('a', 300) + "\n"));
    }

    [Fact]
    public void A_maps_line_gives_the_range_and_the_files_identity_as_stat_reports_it()
    {
        byte[] text = Encoding.ASCII.GetBytes("7f91b0556000-7f91b0557000 r-xp 00001000 fe:00 331651     /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");

        Assert.True(MapLine.TryParse(text, out MapLine line));

        Assert.Equal(0x7f91b0556000UL, line.Start);
        Assert.Equal(0x7f91b0557000UL, line.End);
        Assert.True(line.Executable);
        Assert.Equal(new Api.FileIdentity(0xfe00, 331651), line.File);
        Assert.Equal("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", Encoding.ASCII.GetString(line.Name));
    }

    [Fact]
    public void An_anonymous_mapping_has_no_file()
    {
        Assert.True(MapLine.TryParse("7ffd1000-7ffd3000 rw-p 00000000 00:00 0 [stack]"u8, out MapLine line));
        Assert.True(line.File.IsNone);
        Assert.False(line.Executable);
    }

    [Fact]
    public void The_maps_of_this_process_name_its_own_executable_by_identity()
    {
        string exe = new FileInfo("/proc/self/exe").ResolveLinkTarget(returnFinalTarget: true)!.FullName;
        Api.FileIdentity expected = TestFiles.IdentityOf(exe);
        byte[] proc = new byte[64], buffer = new byte[65536];
        bool found = false;
        var maps = new ProcMaps(Environment.ProcessId, proc, buffer);
        try
        {
            Assert.True(maps.IsOpen);
            while (!found && maps.Next(out MapLine line))
            {
                found = line.File == expected && Encoding.UTF8.GetString(line.Name) == exe;
            }
        }
        finally
        {
            maps.Dispose();
        }

        Assert.True(found, exe + " (" + expected + ") is not among the mappings");
    }
}
