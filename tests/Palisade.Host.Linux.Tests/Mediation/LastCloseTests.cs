using System.Collections.Concurrent;
using System.Text;
using Palisade.Api;
using Palisade.Host.Linux.Mediation;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>
/// Cleanup at the release of the open file description (its last close, or its last holder's exit), for real shells
/// writing real files under the supervisor with the kernel mediator; the cleanup callback reads the file through
/// <see cref="IFilterManager.ReadFile"/>.
/// </summary>
public sealed class LastCloseTests : IDisposable
{
    private readonly TestKernel _k = new();
    private readonly Guest _guest = new();
    private readonly ConcurrentQueue<(string Name, string Content, int ProcessId)> _cleanups = new();

    public LastCloseTests()
    {
        CallbackCookie cookie = default;
        _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "last-close",
            Altitude = "320000",
            Operations =
            [
                new FileOperationRegistration
                {
                    Kind = FileOperationKind.Cleanup,
                    PreOperation = (ref FileOperation op) =>
                    {
                        if (op.Path.StartsWith(_guest.Directory, StringComparison.Ordinal))
                        {
                            byte[] buffer = new byte[256];
                            Status s = c.Files.ReadFile(cookie, op.File, 0, buffer, out int n);
                            string content = s.IsSuccess ? Encoding.ASCII.GetString(buffer, 0, n) : "read: " + s.Name;
                            _cleanups.Enqueue((Path.GetFileName(op.Path), content, op.RequesterProcessId));
                        }

                        return PreOperationStatus.SuccessNoCallback;
                    },
                },
            ],
        }, out cookie));
    }

    public void Dispose()
    {
        _k.Dispose();
        _guest.Dispose();
    }

    private void Shell(string script) => Assert.Equal(0, _guest.Shell(new KernelMediator(_k.Host), script));

    [LastCloseFact("/bin/sh")]
    public void Echo_into_a_file_is_cleaned_up_once_with_what_was_written()
    {
        Shell("echo hi > f");

        Assert.Equal([("f", "hi\n")], _cleanups.Select(c => (c.Name, c.Content)));
    }

    [LastCloseFact("/bin/sh")]
    public void A_duplicated_descriptor_keeps_the_description_until_its_last_close()
    {
        Shell("exec 3> f; exec 4>&3; echo a >&3; exec 3>&-; echo b >&4; exec 4>&-");

        Assert.Equal([("f", "a\nb\n")], _cleanups.Select(c => (c.Name, c.Content)));
    }

    [LastCloseFact("/bin/sh")]
    public void A_file_written_by_a_process_killed_without_closing_it_is_cleaned_up_at_its_exit()
    {
        // The child never calls close(2): SIGKILL ends it with its descriptor open, and Linux releases it at the exit.
        Shell("sh -c 'exec 3> f; echo left >&3; kill -9 $$'; test -s f");

        Assert.Equal([("f", "left\n")], _cleanups.Select(c => (c.Name, c.Content)));
    }

    [LastCloseFact("/bin/sh")]
    public void The_cleanup_names_the_process_that_released_the_description()
    {
        Shell("sh -c 'echo $$ > f'");

        (string _, string content, int processId) = Assert.Single(_cleanups);
        Assert.Equal(int.Parse(content, System.Globalization.CultureInfo.InvariantCulture), processId);
    }

    [LastCloseFact("/bin/sh", "cat")]
    public void A_file_only_read_is_not_cleaned_up()
    {
        File.WriteAllText(_guest.PathOf("r"), "read me");

        Shell("cat r > /dev/null");

        Assert.Empty(_cleanups);
    }
}
