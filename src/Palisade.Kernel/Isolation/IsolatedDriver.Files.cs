// File contexts and written streams of an isolated driver. A file context is the driver's object: the kernel keeps a
// number in the filter's context table (a ContextToken), the host keeps the object under that number, and each change
// tells the host which number it replaced or removed, so that the host lets the object go. A stream the driver opened
// for writing stays the kernel's; the host writes through requests.
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

internal sealed partial class IsolatedDriver
{
    /// <summary>Makes each get-and-change of a file context one step, so the number reported as replaced is the one replaced.</summary>
    private readonly Lock _fileContexts = new();

    private void ServeFileContext(Conversation c, IsolationOp op, ref RecordReader a, IFilterManager files)
    {
        CallbackCookie cookie = new(a.I64());
        FileIdentity file = a.Identity();
        long number = op == IsolationOp.SetFileContext ? a.I64() : 0;
        if (a.Finish().IsError)
        {
            return;
        }

        Status s;
        long previous;
        lock (_fileContexts)
        {
            Status found = files.GetFileContext(cookie, file, out object? context);
            previous = context is ContextToken t ? t.Value : 0;
            s = op switch
            {
                IsolationOp.SetFileContext => number == 0 ? Status.InvalidParameter : files.SetFileContext(cookie, file, new ContextToken(number)),
                IsolationOp.DeleteFileContext => files.DeleteFileContext(cookie, file),
                _ => found,
            };
        }

        RecordWriter w = c.BeginReply(s);
        w.I64(s.IsSuccess ? previous : 0);
        c.Reply(ref w);
    }

    private void ServeStream(Conversation c, IsolationOp op, ref RecordReader a)
    {
        long handle = a.I64();
        long offset = op == IsolationOp.StreamWrite ? a.I64() : 0;
        ReadOnlySpan<byte> data = op == IsolationOp.StreamWrite ? a.Data() : default;
        long length = op == IsolationOp.StreamSetLength ? a.I64() : 0;
        if (a.Finish().IsError)
        {
            return;
        }

        if (!_streams.TryGetValue(handle, out Stream? stream))
        {
            c.Reply(Status.InvalidHandle);
            return;
        }

        Status s = Status.Success;
        long result = 0;
        try
        {
            switch (op)
            {
                case IsolationOp.StreamWrite:
                    stream.Position = offset;
                    stream.Write(data);
                    break;
                case IsolationOp.StreamLength:
                    result = stream.Length;
                    break;
                default:
                    stream.SetLength(length);
                    break;
            }
        }
        catch (Exception e) when (e is IOException or NotSupportedException or ArgumentException or UnauthorizedAccessException)
        {
            // A stream opened for reading refuses writes; a full disk, a bad length: the driver's write fails.
            s = e is NotSupportedException or UnauthorizedAccessException ? Status.AccessDenied : e is ArgumentException ? Status.InvalidParameter : Status.Unsuccessful;
        }

        RecordWriter w = c.BeginReply(s);
        if (op == IsolationOp.StreamLength)
        {
            w.I64(result);
        }

        c.Reply(ref w);
    }
}
