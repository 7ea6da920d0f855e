// File contexts of a driver in its host: the objects stay here under numbers, the kernel's context table holds the
// numbers (IsolatedDriver.Files.cs). A number the kernel reports replaced or removed is let go; the objects of a filter
// go when it unregisters. A context the kernel drops on its own (the file's identity reused after deletion) is let go
// when the driver next asks for that file's context and the kernel has none (until then it is held, as the kernel held
// it before).
using System.Collections.Concurrent;
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

internal sealed partial class RemoteFiles
{
    private readonly ConcurrentDictionary<long, FileContextEntry> _fileContexts = new();

    /// <summary>The number last set for each file of each filter: finds what to let go when the kernel has dropped it.</summary>
    private readonly ConcurrentDictionary<(CallbackCookie Filter, FileIdentity File), long> _fileContextNumbers = new();

    public Status SetFileContext(CallbackCookie cookie, FileIdentity file, object context)
    {
        if (context is null || file.IsNone)
        {
            return Status.InvalidParameter;
        }

        long number = Interlocked.Increment(ref _nextNumber);
        _fileContexts[number] = new FileContextEntry(cookie, context);
        Status s = FileContextRequest(IsolationOp.SetFileContext, cookie, file, number, out long replaced);
        _ = _fileContexts.TryRemove(s.IsSuccess ? replaced : number, out _);
        if (s.IsSuccess)
        {
            _fileContextNumbers[(cookie, file)] = number;
        }

        return s;
    }

    public Status GetFileContext(CallbackCookie cookie, FileIdentity file, out object? context)
    {
        context = null;
        bool kept = _fileContextNumbers.TryGetValue((cookie, file), out long before);
        Status s = FileContextRequest(IsolationOp.GetFileContext, cookie, file, 0, out long number);
        if (s == Status.NotFound && kept
            && _fileContextNumbers.TryRemove(new KeyValuePair<(CallbackCookie, FileIdentity), long>((cookie, file), before)))
        {
            // The kernel has none for the file: the one kept here for it was dropped by the kernel (identity reused).
            // Only the number seen before asking is let go: a set that came meanwhile stays.
            _ = _fileContexts.TryRemove(before, out _);
        }

        if (s.IsError)
        {
            return s;
        }

        if (!_fileContexts.TryGetValue(number, out FileContextEntry? entry))
        {
            return Status.NotFound;
        }

        context = entry.Context;
        return Status.Success;
    }

    public Status DeleteFileContext(CallbackCookie cookie, FileIdentity file)
    {
        Status s = FileContextRequest(IsolationOp.DeleteFileContext, cookie, file, 0, out long removed);
        if (s.IsSuccess)
        {
            _ = _fileContexts.TryRemove(removed, out _);
            _ = _fileContextNumbers.TryRemove(new KeyValuePair<(CallbackCookie, FileIdentity), long>((cookie, file), removed));
        }

        return s;
    }

    private Status FileContextRequest(IsolationOp op, CallbackCookie cookie, FileIdentity file, long number, out long reported)
    {
        reported = 0;
        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(op);
            w.I64(cookie.Value);
            w.Identity(file);
            if (op == IsolationOp.SetFileContext)
            {
                w.I64(number);
            }

            if (!c.Call(ref w, out RecordReader r))
            {
                return Status.InvalidDeviceState;
            }

            Status s = r.Status();
            reported = r.I64();
            return Context.End(ref r, s);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    /// <summary>Lets go the contexts of a filter that unregistered.</summary>
    private void ForgetFileContexts(CallbackCookie cookie)
    {
        foreach (KeyValuePair<long, FileContextEntry> e in _fileContexts)
        {
            if (e.Value.Filter == cookie)
            {
                _ = _fileContexts.TryRemove(e.Key, out _);
            }
        }

        foreach (KeyValuePair<(CallbackCookie Filter, FileIdentity File), long> e in _fileContextNumbers)
        {
            if (e.Key.Filter == cookie)
            {
                _ = _fileContextNumbers.TryRemove(e.Key, out _);
            }
        }
    }

    private sealed record FileContextEntry(CallbackCookie Filter, object Context);
}
