using System.Collections.Concurrent;
using System.Security.Cryptography;
using Palisade.Api;
using Palisade.Host.Linux.Mediation;
using Palisade.Interop;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>
/// An exec reaches minifilters as a create with execute access of the image about to run, and its post callback reads
/// that very image (<see cref="IFilterManager.ReadFile"/>), a memfd included; real programs under the supervisor with the
/// kernel mediator.
/// </summary>
public sealed class ExecuteTests : IDisposable
{
    private readonly TestKernel _k = new();
    private readonly Guest _guest = new();
    private readonly ConcurrentQueue<(string Path, FileIdentity File, FileObjectType Type, string Digest)> _executes = new();
    private Func<string, bool> _deny = _ => false;

    public ExecuteTests()
    {
        CallbackCookie cookie = default;
        _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "execute",
            Altitude = "320000",
            Operations =
            [
                new FileOperationRegistration
                {
                    Kind = FileOperationKind.Create,
                    PreOperation = (ref FileOperation op) =>
                    {
                        if ((op.Access & FileAccessRights.Execute) == 0)
                        {
                            return PreOperationStatus.SuccessNoCallback;
                        }

                        if (_deny(op.Path))
                        {
                            op.Status = Status.AccessDenied;
                            return PreOperationStatus.Complete;
                        }

                        return PreOperationStatus.SuccessWithCallback;
                    },
                    PostOperation = (ref FileOperation op) =>
                    {
                        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                        byte[] buffer = new byte[65536];
                        long offset = 0;
                        Status s;
                        while ((s = c.Files.ReadFile(cookie, op.File, offset, buffer, out int n)).IsSuccess && n > 0)
                        {
                            hash.AppendData(buffer, 0, n);
                            offset += n;
                        }

                        _executes.Enqueue((op.Path, op.File, op.FileType, s.IsSuccess ? Convert.ToHexString(hash.GetHashAndReset()) : "read: " + s.Name));
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

    private static string DigestOf(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private int Shell(string script) => _guest.Shell(new KernelMediator(_k.Host), script);

    [GuestFact("/bin/sh", "/bin/true")]
    public void An_exec_is_an_execute_create_of_the_resolved_image_whose_content_the_filter_reads()
    {
        string program = _guest.PathOf("prog");
        File.Copy("/bin/true", program);
        File.SetUnixFileMode(program, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        File.CreateSymbolicLink(_guest.PathOf("link"), program);
        Assert.Equal(0, Libc.FileIdentityOf(program, out FileIdentity identity, out _));

        Assert.Equal(0, Shell("./link"));

        Assert.Contains((program, identity, FileObjectType.Regular, DigestOf("/bin/true")), _executes);
    }

    [GuestFact("/bin/sh", "/bin/true")]
    public void An_execute_denied_in_pre_create_fails_the_exec_with_EACCES()
    {
        string program = _guest.PathOf("prog");
        File.Copy("/bin/true", program);
        File.SetUnixFileMode(program, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        _deny = path => path == program;

        // The shell reports a refused exec as 126 (found but not executable).
        Assert.Equal(126, Shell("./prog"));
    }

    [GuestFact("/bin/sh", "python3", "/bin/true")]
    public void A_memfd_run_by_fexecve_is_read_through_the_image_that_runs()
    {
        string script = _guest.PathOf("memfd.py");
        File.WriteAllText(script, """
            import os
            fd = os.memfd_create("probe")
            with open("/bin/true", "rb") as f:
                os.write(fd, f.read())
            os.execve(fd, ["probe"], {})
            """);

        Assert.Equal(0, Shell("python3 memfd.py"));

        (string path, FileIdentity _, FileObjectType type, string digest) = Assert.Single(_executes, e => e.Path.StartsWith("/memfd:probe", StringComparison.Ordinal));
        Assert.Equal((FileObjectType.Regular, DigestOf("/bin/true")), (type, digest));
    }
}
