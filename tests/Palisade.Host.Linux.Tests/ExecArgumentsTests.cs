using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Palisade.Host.Linux.Authority;
using Palisade.Host.Linux.Supervision;

namespace Palisade.Host.Linux.Tests;

/// <summary>
/// The reader of an exec's argv and envp (<see cref="ExecArguments"/>), against real memory: vectors built in this
/// process's own native memory and read through its /proc/self/mem, as the supervisor reads a guest's.
/// </summary>
public sealed unsafe class ExecArgumentsTests : IDisposable
{
    private readonly List<nint> _blocks = [];
    private readonly SupervisedProcess _self;

    public ExecArgumentsTests()
    {
        SafeFileHandle memory = File.OpenHandle("/proc/self/mem", FileMode.Open, FileAccess.Read);
        _self = new SupervisedProcess(Environment.ProcessId, memory, new SafeFileHandle(-1, ownsHandle: false));
    }

    public void Dispose()
    {
        _self.Memory.Dispose();
        foreach (nint b in _blocks)
        {
            NativeMemory.Free((void*)b);
        }
    }

    /// <summary>A NULL-terminated vector of the strings given as raw bytes, in native memory; its address.</summary>
    private ulong Vector(params byte[][] strings)
    {
        var pointers = (ulong*)NativeMemory.AllocZeroed((nuint)((strings.Length + 1) * sizeof(ulong)));
        _blocks.Add((nint)pointers);
        for (int i = 0; i < strings.Length; i++)
        {
            var text = (byte*)NativeMemory.AllocZeroed((nuint)strings[i].Length + 1);
            _blocks.Add((nint)text);
            strings[i].CopyTo(new Span<byte>(text, strings[i].Length));
            pointers[i] = (ulong)text;
        }

        return (ulong)pointers;
    }

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Strings_are_read_one_each_with_spaces_empty_strings_and_any_character_kept()
    {
        int budget = ExecArguments.LinuxLimit;
        string[] argv = ["printf", "two words", "", "é\tü→", new string('x', 20_000)];

        List<string> read = ExecArguments.Read(_self, Vector([.. argv.Select(Utf8)]), ref budget);

        Assert.Equal(argv, read);
        Assert.Equal(ExecArguments.LinuxLimit - argv.Sum(a => Encoding.UTF8.GetByteCount(a) + 1 + sizeof(ulong)), budget);
    }

    [Fact]
    public void Bytes_that_are_not_UTF_8_become_U_FFFD()
    {
        int budget = ExecArguments.LinuxLimit;

        List<string> read = ExecArguments.Read(_self, Vector([0x61, 0xFF, 0x62]), ref budget);

        Assert.Equal(["a\uFFFDb"], read);
    }

    [Fact]
    public void A_null_vector_is_an_empty_list()
    {
        int budget = ExecArguments.LinuxLimit;

        Assert.Empty(ExecArguments.Read(_self, 0, ref budget));
        Assert.Equal(ExecArguments.LinuxLimit, budget);
    }

    [Fact]
    public void Reading_stops_at_the_budget_Linux_allows_for_argv_and_envp_together()
    {
        int budget = 2 * (3 + 1 + sizeof(ulong)) + 5; // room for two strings of 3 bytes, not three

        List<string> read = ExecArguments.Read(_self, Vector(Utf8("aaa"), Utf8("bbb"), Utf8("ccc")), ref budget);

        Assert.Equal(["aaa", "bbb"], read);
        Assert.True(budget < 0);
    }

    [Fact]
    public void A_string_longer_than_Linux_takes_ends_the_list_before_it()
    {
        int budget = ExecArguments.LinuxLimit;

        List<string> read = ExecArguments.Read(_self, Vector(Utf8("first"), new byte[ExecArguments.MaxStringLength].Select(_ => (byte)'y').ToArray(), Utf8("after")), ref budget);

        Assert.Equal(["first"], read);
    }

    [Fact]
    public void A_pointer_to_unmapped_memory_ends_the_list_where_Linux_would_fail_with_EFAULT()
    {
        int budget = ExecArguments.LinuxLimit;
        ulong vector = Vector(Utf8("ok"), Utf8("never"));
        ((ulong*)vector)[1] = 8; // the first page is never mapped

        Assert.Equal(["ok"], ExecArguments.Read(_self, vector, ref budget));
    }
}
