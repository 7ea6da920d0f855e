using System.Collections.Concurrent;
using Palisade.Api;
using Palisade.Host.Linux.Mediation;
using Palisade.Interop;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>
/// The identity and type of the object every file operation acts on, as pre callbacks see them, for real shells under
/// the supervisor with the kernel mediator: they are those of the file Linux resolves, read by the test itself.
/// </summary>
public sealed class FileObjectFactsTests : IDisposable
{
    private readonly TestKernel _k = new();
    private readonly Guest _guest = new();
    private readonly ConcurrentQueue<(FileOperationKind Kind, string Name, FileIdentity File, FileObjectType Type, bool IsDirectory)> _seen = new();
    private readonly ConcurrentQueue<(FileOperationKind Kind, string Name, FileIdentity File, FileObjectType Type, bool IsDirectory)> _seenAfter = new();

    public FileObjectFactsTests()
    {
        // The pre callback reads nothing of the object: what the post callback reads is resolved after the operation, if
        // the kernel did not keep what it resolved before.
        FilePreCallback pre = (ref FileOperation op) => op.RequestedPath is { } requested && requested.StartsWith(_guest.Directory, StringComparison.Ordinal)
            ? PreOperationStatus.SuccessWithCallback : PreOperationStatus.SuccessNoCallback;
        FilePostCallback post = (ref FileOperation op) =>
            _seenAfter.Enqueue((op.Kind, Path.GetFileName(op.Path), op.File, op.FileType, op.IsDirectory));
        FilePreCallback preReading = (ref FileOperation op) =>
        {
            if (op.Path.StartsWith(_guest.Directory, StringComparison.Ordinal))
            {
                _seen.Enqueue((op.Kind, Path.GetFileName(op.Path), op.File, op.FileType, op.IsDirectory));
            }

            return PreOperationStatus.SuccessNoCallback;
        };
        _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "facts-after",
            Altitude = "320001",
            Operations =
            [
                new FileOperationRegistration { Kind = FileOperationKind.Rename, PreOperation = pre, PostOperation = post },
                new FileOperationRegistration { Kind = FileOperationKind.Delete, PreOperation = pre, PostOperation = post },
            ],
        }, out _));
        _k.Start(c => c.Files.RegisterFilter(new FilterRegistration
        {
            Name = "facts",
            Altitude = "320000",
            Operations =
            [
                new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = preReading },
                new FileOperationRegistration { Kind = FileOperationKind.SetInformation, PreOperation = preReading },
            ],
        }, out _));
    }

    public void Dispose()
    {
        _k.Dispose();
        _guest.Dispose();
    }

    private FileIdentity IdentityOf(string name)
    {
        Assert.Equal(0, Libc.FileIdentityOf(_guest.PathOf(name), out FileIdentity identity, out _));
        return identity;
    }

    private void Shell(string script) => Assert.Equal(0, _guest.Shell(new KernelMediator(_k.Host), script));

    [GuestFact("/bin/sh", "python3")]
    public void A_truncate_by_path_carries_the_files_identity_and_type()
    {
        File.WriteAllText(_guest.PathOf("t"), "12345");
        FileIdentity expected = IdentityOf("t");

        Shell("python3 -c \"import os; os.truncate('t', 1)\"");

        Assert.Contains((FileOperationKind.SetInformation, "t", expected, FileObjectType.Regular, false), _seen);
    }

    [GuestFact("/bin/sh", "mv")]
    public void A_rename_carries_in_its_post_callback_the_identity_and_type_of_the_file_renamed()
    {
        File.WriteAllText(_guest.PathOf("a"), "x");
        FileIdentity expected = IdentityOf("a");

        Shell("mv a b");

        Assert.Contains((FileOperationKind.Rename, "a", expected, FileObjectType.Regular, false), _seenAfter);
    }

    [GuestFact("/bin/sh", "rm")]
    public void A_delete_carries_in_its_post_callback_the_identity_and_type_of_the_file_deleted()
    {
        File.WriteAllText(_guest.PathOf("d"), "x");
        FileIdentity expected = IdentityOf("d");

        Shell("rm d");

        Assert.Contains((FileOperationKind.Delete, "d", expected, FileObjectType.Regular, false), _seenAfter);
    }

    [GuestFact("/bin/sh", "ls")]
    public void A_pre_create_of_an_existing_directory_says_it_is_a_directory()
    {
        Directory.CreateDirectory(_guest.PathOf("dir"));
        FileIdentity expected = IdentityOf("dir");

        Shell("ls dir > /dev/null");

        Assert.Contains((FileOperationKind.Create, "dir", expected, FileObjectType.Directory, true), _seen);
    }
}
