// Linked into every sample driver; used by the firewall (prompt). A driver's channel to a user-mode service that runs
// under the same `palisade run`, built from files alone, from before communication ports (docs/ports.md; the
// antivirus's scanning service uses a port now, and the firewall's prompt is left to move): the driver holds an operation (IPendedOperation), writes one request line to the
// service, and the service answers by creating a file named after the operation's id in the channel folder, which the
// driver's own minifilter sees as a create and turns into the completion of the held operation.
//
// The folder holds:
//   requests     a FIFO the service creates and opens read-write (so that it never sees end of file). The process
//                that opens it is the service; the driver writes "ID WORDS\n" lines to it with its own I/O.
//   ID.WORD      an answer the service creates (for example 42.clean, 42.infected, 42.allow, 42.block). The create
//                goes through; the service may remove the file afterwards.
// Anyone who can write into the folder can answer, so it must belong to the service's user, mode 0700.
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Palisade.Api;

namespace Palisade.Drivers;

internal sealed class ServiceChannel
{
    /// <summary>The name of the request FIFO in the folder.</summary>
    public const string RequestsName = "requests";

    private readonly IFilterManager _files;
    private readonly ConcurrentDictionary<long, object?> _held = new();
    private readonly Lock _writeLock = new();
    private Stream? _requests;
    private int _service;

    /// <summary>A channel through <paramref name="folder"/> (absolute, without a trailing slash).</summary>
    public ServiceChannel(IFilterManager files, string folder)
    {
        _files = files;
        Folder = folder.TrimEnd('/');
        RequestsPath = Folder + "/" + RequestsName;
    }

    /// <summary>The channel folder.</summary>
    public string Folder { get; }

    /// <summary>The request FIFO's path.</summary>
    public string RequestsPath { get; }

    /// <summary>The filter whose own I/O writes the requests (set once the driver registered it).</summary>
    public CallbackCookie Filter { get; set; }

    /// <summary>The process that opened the request FIFO (the service), or 0 while none has.</summary>
    public int ServiceProcessId => Volatile.Read(ref _service);

    /// <summary>Operations waiting for the service's answer.</summary>
    public int Waiting => _held.Count;

    /// <summary>True for a path inside the channel folder.</summary>
    public bool Contains(string path) => path.Length > Folder.Length + 1 && path.StartsWith(Folder, StringComparison.Ordinal) && path[Folder.Length] == '/';

    /// <summary>
    /// Looks at a create in the channel folder (call it from the filter's pre-create). The open of the request FIFO makes
    /// its process the service; a create named <c>ID.WORD</c> answers the operation <c>ID</c> the driver asked about: its
    /// state (what <see cref="Ask"/> was given) is returned with the word, and forgotten (an answer counts once).
    /// </summary>
    public bool TryTakeAnswer(in FileOperation op, out object? state, out string word)
    {
        state = null;
        word = "";
        string name = op.Path[(Folder.Length + 1)..];
        if (name == RequestsName)
        {
            Volatile.Write(ref _service, op.RequesterProcessId);
            return false;
        }

        int dot = name.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || !long.TryParse(name.AsSpan(0, dot), NumberStyles.None, CultureInfo.InvariantCulture, out long id))
        {
            return false;
        }

        word = name[(dot + 1)..];
        return _held.TryRemove(id, out state);
    }

    /// <summary>
    /// Sends <paramref name="request"/> about <paramref name="held"/> to the service as <c>ID REQUEST</c>, and keeps
    /// <paramref name="state"/> until the answer. Fails (and keeps nothing) when no service has opened the FIFO, when the
    /// request holds a line break, or when the write fails (the service went away).
    /// </summary>
    public Status Ask(IPendedOperation held, object? state, string request)
    {
        if (ServiceProcessId == 0 || request.Contains('\n', StringComparison.Ordinal))
        {
            return Status.InvalidDeviceState;
        }

        _held[held.Id] = state;
        byte[] line = Encoding.UTF8.GetBytes(held.Id.ToString(CultureInfo.InvariantCulture) + " " + request + "\n");
        lock (_writeLock)
        {
            try
            {
                if (_requests is null)
                {
                    Status opened = _files.OpenFile(Filter, RequestsPath, FileAccess.Write, out _requests);
                    if (opened.IsError)
                    {
                        _held.TryRemove(held.Id, out _);
                        return opened;
                    }
                }

                // One write per line: a FIFO writes up to 4096 bytes at once, so lines never interleave.
                _requests!.Write(line);
                _requests.Flush();
                return Status.Success;
            }
            catch (IOException)
            {
                _requests?.Dispose();
                _requests = null;
                _held.TryRemove(held.Id, out _);
                return Status.Unsuccessful;
            }
        }
    }

    /// <summary>Forgets an operation whose hold the kernel ended (no answer will complete it); returns its state.</summary>
    public object? Forget(IPendedOperation held) => _held.TryRemove(held.Id, out object? state) ? state : null;

    /// <summary>Closes the request FIFO (the driver unloads).</summary>
    public void Close()
    {
        lock (_writeLock)
        {
            _requests?.Dispose();
            _requests = null;
        }
    }
}
