using System.Collections.Concurrent;
using Palisade.Api;
using Palisade.Host.Linux.Mediation;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>
/// What a post-create callback is told a create did (<see cref="FileOperation.CreateResult"/>), for real shells opening
/// real files under the supervisor with the kernel mediator.
/// </summary>
public sealed class CreateResultTests : IDisposable
{
    private readonly TestKernel _k = new();
    private readonly Guest _guest = new();
    private readonly ConcurrentQueue<(string Path, CreateResult Result)> _seen = new();

    public CreateResultTests() =>
        _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "create-result",
            Altitude = "320000",
            Operations =
            [
                new FileOperationRegistration
                {
                    Kind = FileOperationKind.Create,
                    PreOperation = (ref FileOperation _) => PreOperationStatus.SuccessWithCallback,
                    PostOperation = (ref FileOperation op) =>
                    {
                        if (op.Status.IsSuccess && op.Path.StartsWith(_guest.Directory, StringComparison.Ordinal))
                        {
                            _seen.Enqueue((Path.GetFileName(op.Path), op.CreateResult));
                        }
                    },
                },
            ],
        }, out _));

    public void Dispose()
    {
        _k.Dispose();
        _guest.Dispose();
    }

    private void Shell(string script) => Assert.Equal(0, _guest.Shell(new KernelMediator(_k.Host), script));

    [Fact]
    public void An_O_CREAT_open_that_makes_the_file_is_created_and_the_next_one_opened()
    {
        Shell(": >> log.txt && : >> log.txt");

        Assert.Equal([("log.txt", CreateResult.Created), ("log.txt", CreateResult.Opened)], _seen);
    }

    [Fact]
    public void An_O_TRUNC_open_of_an_existing_file_is_overwritten()
    {
        File.WriteAllText(_guest.PathOf("old.txt"), "before");

        Shell("echo after > old.txt");

        Assert.Equal([("old.txt", CreateResult.Overwritten)], _seen);
        Assert.Equal("after\n", File.ReadAllText(_guest.PathOf("old.txt")));
    }

    [Fact]
    public void An_open_without_O_CREAT_is_opened()
    {
        File.WriteAllText(_guest.PathOf("read.txt"), "x");

        Shell("cat read.txt > /dev/null");

        Assert.Equal([("read.txt", CreateResult.Opened)], _seen);
    }

    [Fact]
    public void An_O_CREAT_open_of_a_directory_still_fails_with_EISDIR()
    {
        Directory.CreateDirectory(_guest.PathOf("dir"));

        // The shell's `>>` opens O_WRONLY|O_CREAT|O_APPEND; Linux refuses O_CREAT on a directory with EISDIR.
        Shell("if true 2> err.txt >> dir; then exit 1; fi; grep -q 'Is a directory' err.txt");

        Assert.DoesNotContain(_seen, e => e.Path == "dir");
    }

    [Fact]
    public void A_mkdir_is_created()
    {
        Shell("mkdir made");

        Assert.Contains(("made", CreateResult.Created), _seen);
    }
}
