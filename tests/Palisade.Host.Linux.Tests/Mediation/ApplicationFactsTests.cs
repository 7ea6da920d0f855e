using System.Security.Cryptography;
using Palisade.Api;
using Palisade.Host.Linux.Mediation;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>What the network classify context says about a process's program, read from a real process (this one).</summary>
public sealed class ApplicationFactsTests
{
    private static readonly string s_image = new FileInfo("/proc/self/exe").LinkTarget!;

    [Fact]
    public void The_image_digest_is_the_SHA256_of_the_file_the_process_runs()
    {
        ReadOnlyMemory<byte> digest = new ApplicationFacts().ImageDigest(Environment.ProcessId);

        Assert.Equal(SHA256.HashData(File.ReadAllBytes(s_image)), digest.ToArray());
    }

    [Fact]
    public void A_second_digest_of_an_unchanged_image_comes_from_the_cache()
    {
        var facts = new ApplicationFacts();
        ReadOnlyMemory<byte> first = facts.ImageDigest(Environment.ProcessId);

        ReadOnlyMemory<byte> second = facts.ImageDigest(Environment.ProcessId);

        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(first, out ArraySegment<byte> a));
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(second, out ArraySegment<byte> b));
        Assert.Same(a.Array, b.Array);
    }

    [Fact]
    public void The_image_identity_is_that_of_the_file_the_process_runs()
    {
        using Microsoft.Win32.SafeHandles.SafeFileHandle image = File.OpenHandle(s_image);
        Assert.Equal(0, Interop.FileFacts.StatxOf((int)image.DangerousGetHandle(), Interop.ChangeStamps.Mask, out Interop.StatxBuffer st));

        FileIdentity identity = ApplicationFacts.ImageIdentity(Environment.ProcessId);

        Assert.Equal(new FileIdentity(st.Device, st.Ino), identity);
    }

    [Fact]
    public void The_arguments_are_the_process_argv()
    {
        string[] expected = File.ReadAllText("/proc/self/cmdline").TrimEnd('\0').Split('\0');

        Assert.Equal(expected, ApplicationFacts.Arguments(Environment.ProcessId));
    }

    [Fact]
    public void A_process_that_does_not_exist_has_no_digest_identity_or_arguments()
    {
        const int NoSuchProcess = int.MaxValue;

        Assert.True(new ApplicationFacts().ImageDigest(NoSuchProcess).IsEmpty);
        Assert.True(ApplicationFacts.ImageIdentity(NoSuchProcess).IsNone);
        Assert.Null(ApplicationFacts.Arguments(NoSuchProcess));
    }
}
