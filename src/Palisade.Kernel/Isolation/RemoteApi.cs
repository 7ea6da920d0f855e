// The API managers of a driver in its host: every call is a request to the kernel (docs/security.md, "The isolated
// mode"); the other areas are in RemoteApi.*.cs.
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

/// <summary>IFilterManager in a driver host.</summary>
internal sealed partial class RemoteFiles(RemoteDriverContext context) : IFilterManager
{
    private readonly Lock _sync = new();
    private readonly Dictionary<object, long> _verdictNumbers = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<long, object> _verdicts = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, object> _completionContexts = new();
    private long _nextNumber;

    private IsolationChannel Channel => context.Channel;

    private RemoteDriverContext Context => context;

    /// <summary>Runs a pre or post callback the kernel sent and replies with its verdict.</summary>
    internal void Run(Conversation c, IsolationOp op, int registration, ref FileOperation operation, long token)
    {
        RecordWriter w;
        try
        {
            var r = context.Find(registration) as FileOperationRegistration
                ?? throw new InvalidOperationException("no filter registration " + registration + " in this host");
            if (op == IsolationOp.FilePre)
            {
                FilePreCallback pre = r.PreOperation ?? throw new InvalidOperationException("registration " + registration + " has no pre callback");
                PreOperationStatus verdict = RunPre(pre, ref operation);
                // A context is kept only for the post callback that takes it back (any other verdict has none).
                long number = verdict == PreOperationStatus.SuccessWithCallback ? KeepContext(operation.CompletionContext) : 0;

                w = c.BeginReply(Status.Success);
                w.U8((byte)CallbackOutcome.Returned);
                w.I32((int)verdict);
                w.Status(operation.Status);
                w.I64(number);
            }
            else
            {
                FilePostCallback post = r.PostOperation ?? throw new InvalidOperationException("registration " + registration + " has no post callback");
                operation.CompletionContext = token != 0 && _completionContexts.TryRemove(token, out object? kept) ? kept : null;
                post(ref operation);
                w = c.BeginReply(Status.Success);
                w.U8((byte)CallbackOutcome.Returned);
                w.Status(operation.Status);
            }
        }
#pragma warning disable CA1031 // The driver's exception goes to the kernel, which contains it as it does an in-kernel one.
        catch (Exception e)
#pragma warning restore CA1031
        {
            w = c.BeginReply(Status.Success);
            IsolationCodec.WriteThrew(ref w, e);
        }

        c.Reply(ref w);
    }

    public Status RegisterFilter(FilterRegistration registration, out CallbackCookie cookie)
    {
        cookie = default;
        if (registration?.Operations is null || registration.Name is null || registration.Altitude is null)
        {
            return Status.InvalidParameter;
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.RegisterFilter);
            w.String(registration.Name);
            w.String(registration.Altitude);
            w.I32(registration.VerdictCacheCapacity);
            w.U32((uint)registration.Operations.Count);
            foreach (FileOperationRegistration o in registration.Operations)
            {
                if (o is null)
                {
                    return Status.InvalidParameter;
                }

                w.I32((int)o.Kind);
                w.I32(context.Keep(o));
                w.Bool(o.PreOperation is not null);
                w.Bool(o.PostOperation is not null);
                w.I32((int)o.Flags);
            }

            return context.ReadCookie(c, ref w, out cookie);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    public Status UnregisterFilter(CallbackCookie cookie)
    {
        Status s = context.Cookie(IsolationOp.UnregisterFilter, cookie);
        if (s.IsSuccess)
        {
            ForgetFileContexts(cookie);
        }

        return s;
    }

    public Status SetFileVerdict(CallbackCookie cookie, FileIdentity file, FileChangeStamp stamp, object verdict, FileVerdictFlags flags)
    {
        if (verdict is null)
        {
            return Status.InvalidParameter;
        }

        long number;
        lock (_sync)
        {
            if (!_verdictNumbers.TryGetValue(verdict, out number))
            {
                number = Interlocked.Increment(ref _nextNumber);
                _verdictNumbers[verdict] = number;
                _verdicts[number] = verdict;
            }
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.SetFileVerdict);
            w.I64(cookie.Value);
            w.Identity(file);
            w.Stamp(stamp);
            w.I64(number);
            w.I32((int)flags);
            return context.Request(c, ref w);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    public Status GetFileVerdict(CallbackCookie cookie, FileIdentity file, FileChangeStamp stamp, out object? verdict)
    {
        verdict = null;
        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.GetFileVerdict);
            w.I64(cookie.Value);
            w.Identity(file);
            w.Stamp(stamp);
            if (!c.Call(ref w, out RecordReader r))
            {
                return Status.InvalidDeviceState;
            }

            Status s = r.Status();
            long number = r.I64();
            s = context.End(ref r, s);
            if (s == Status.Success)
            {
                lock (_sync)
                {
                    verdict = _verdicts.GetValueOrDefault(number);
                }
            }

            return s;
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    public Status QueryFileState(CallbackCookie cookie, FileIdentity file, out FileState state)
    {
        state = default;
        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.QueryFileState);
            w.I64(cookie.Value);
            w.Identity(file);
            if (!c.Call(ref w, out RecordReader r))
            {
                return Status.InvalidDeviceState;
            }

            Status s = r.Status();
            FileState read = new()
            {
                File = r.Identity(),
                Type = r.Enum<FileObjectType>(),
                Size = r.I64(),
                ModificationTime = r.I64(),
                ChangeTime = r.I64(),
                BirthTime = r.I64(),
                ChangeStamp = r.Stamp(),
                Writers = r.Enum<WriterCheck>(),
                GuestWriteDescriptions = r.I32(),
            };
            s = context.End(ref r, s);
            if (s == Status.Success)
            {
                state = read;
            }

            return s;
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    public Status ReadFile(CallbackCookie cookie, FileIdentity file, long offset, Span<byte> buffer, out int bytesRead) =>
        Read(IsolationOp.ReadFile, cookie.Value, file, offset, buffer, out bytesRead);

    /// <summary>
    /// Reads a file the kernel holds open, in pieces of at most one record (a short piece is the end of the file):
    /// <see cref="IsolationOp.ReadFile"/> of a filter's create or cleanup (<paramref name="first"/> is its cookie), or
    /// <see cref="IsolationOp.ReadPendedFile"/> of a held create (<paramref name="first"/> is the hold's id, no identity).
    /// </summary>
    private Status Read(IsolationOp op, long first, FileIdentity file, long offset, Span<byte> buffer, out int bytesRead)
    {
        bytesRead = 0;
        Conversation c = Channel.Enter();
        try
        {
            while (bytesRead < buffer.Length)
            {
                int want = Math.Min(buffer.Length - bytesRead, IsolationRecord.MaximumData);
                RecordWriter w = c.BeginCall(op);
                w.I64(first);
                if (op == IsolationOp.ReadFile)
                {
                    w.Identity(file);
                }

                w.I64(offset + bytesRead);
                w.I32(want);
                Status s = ReadData(c, ref w, buffer[bytesRead..], want, out int got);
                if (s.IsError)
                {
                    return bytesRead > 0 ? Status.Success : s;
                }

                bytesRead += got;
                if (got < want)
                {
                    break;
                }
            }

            return Status.Success;
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    /// <summary>A read's reply: its status and at most <paramref name="want"/> bytes into <paramref name="into"/>.</summary>
    internal Status ReadData(Conversation c, ref RecordWriter w, Span<byte> into, int want, out int got)
    {
        got = 0;
        if (!c.Call(ref w, out RecordReader r))
        {
            return Status.InvalidDeviceState;
        }

        Status s = r.Status();
        if (s.IsError)
        {
            return context.End(ref r, s);
        }

        ReadOnlySpan<byte> data = r.Data();
        if (data.Length > want)
        {
            Channel.Fail("the kernel sent more bytes than asked for");
            return Status.InvalidDeviceState;
        }

        data.CopyTo(into);
        got = data.Length;
        return context.End(ref r, s);
    }

    public Status OpenFile(CallbackCookie cookie, string path, FileAccess access, out Stream? stream) => OpenFile(cookie, path, access, out stream, out _);

    public Status OpenFile(CallbackCookie cookie, string path, FileAccess access, out Stream? stream, out FileIdentity file)
    {
        stream = null;
        file = default;
        if (path is null)
        {
            return Status.InvalidParameter;
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.OpenFile);
            w.I64(cookie.Value);
            w.String(path);
            w.I32((int)access);
            if (w.Overflowed)
            {
                return Status.InvalidParameter;
            }

            if (!c.Call(ref w, out RecordReader r))
            {
                return Status.InvalidDeviceState;
            }

            Status s = r.Status();
            long handle = r.I64();
            file = r.Identity();
            s = context.End(ref r, s);
            if (handle != 0 && Channel.Failure is null)
            {
                stream = new RemoteStream(this, handle, access);
            }

            return s;
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    public Status RenameFile(CallbackCookie cookie, string path, string newPath) => Rename(cookie, path, newPath, expects: false, default);

    public Status RenameFile(CallbackCookie cookie, string path, string newPath, FileIdentity expected) => Rename(cookie, path, newPath, expects: true, expected);

    public Status DeleteFile(CallbackCookie cookie, string path) => Delete(cookie, path, expects: false, default);

    public Status DeleteFile(CallbackCookie cookie, string path, FileIdentity expected) => Delete(cookie, path, expects: true, expected);

    public Status SetFileInformation(CallbackCookie cookie, string path, FileInformationClass informationClass, long value)
    {
        if (path is null)
        {
            return Status.InvalidParameter;
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.SetFileInformation);
            w.I64(cookie.Value);
            w.String(path);
            w.I32((int)informationClass);
            w.I64(value);
            return context.Request(c, ref w);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    private Status Rename(CallbackCookie cookie, string path, string newPath, bool expects, FileIdentity expected)
    {
        if (path is null || newPath is null)
        {
            return Status.InvalidParameter;
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.RenameFile);
            w.I64(cookie.Value);
            w.String(path);
            w.String(newPath);
            w.Bool(expects);
            w.Identity(expected);
            return context.Request(c, ref w);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    private Status Delete(CallbackCookie cookie, string path, bool expects, FileIdentity expected)
    {
        if (path is null)
        {
            return Status.InvalidParameter;
        }

        Conversation c = Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.DeleteFile);
            w.I64(cookie.Value);
            w.String(path);
            w.Bool(expects);
            w.Identity(expected);
            return context.Request(c, ref w);
        }
        finally
        {
            Channel.Leave(c);
        }
    }

    /// <summary>A stream the kernel opened for the driver, read through requests.</summary>
    /// <summary>
    /// A stream the kernel opened for the driver (<see cref="OpenFile(CallbackCookie, string, FileAccess, out Stream?)"/>):
    /// each read, write, length and seek is a request on the kernel's own stream, at this stream's position.
    /// </summary>
    private sealed class RemoteStream(RemoteFiles files, long handle, FileAccess access) : Stream
    {
        private long _position;
        private bool _closed;

        public override bool CanRead => !_closed && (access & FileAccess.Read) != 0;

        public override bool CanSeek => !_closed;

        public override bool CanWrite => !_closed && (access & FileAccess.Write) != 0;

        public override long Length
        {
            get
            {
                ObjectDisposedException.ThrowIf(_closed, this);
                IsolationChannel channel = files.Channel;
                Conversation c = channel.Enter();
                try
                {
                    RecordWriter w = c.BeginCall(IsolationOp.StreamLength);
                    w.I64(handle);
                    if (!c.Call(ref w, out RecordReader r))
                    {
                        throw new IOException("the kernel is gone");
                    }

                    Status s = r.Status();
                    long length = s.IsSuccess ? r.I64() : 0;
                    s = files.Context.End(ref r, s);
                    return s.IsSuccess ? length : throw new IOException("the kernel could not tell the length: " + s.Name);
                }
                finally
                {
                    channel.Leave(c);
                }
            }
        }

        public override long Position
        {
            get => _position;
            set => _position = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), "a position is not negative");
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            IsolationChannel channel = files.Channel;
            Conversation c = channel.Enter();
            try
            {
                int want = Math.Min(buffer.Length, IsolationRecord.MaximumData);
                RecordWriter w = c.BeginCall(IsolationOp.StreamRead);
                w.I64(handle);
                w.I64(_position);
                w.I32(want);
                Status s = files.ReadData(c, ref w, buffer, want, out int got);
                if (s.IsError)
                {
                    throw new IOException("the kernel's read failed: " + s.Name);
                }

                _position += got;
                return got;
            }
            finally
            {
                channel.Leave(c);
            }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            while (!buffer.IsEmpty)
            {
                // In pieces of at most one record.
                ReadOnlySpan<byte> piece = buffer[..Math.Min(buffer.Length, IsolationRecord.MaximumData)];
                Status s = Request(IsolationOp.StreamWrite, piece, 0);
                if (s.IsError)
                {
                    throw new IOException("the kernel's write failed: " + s.Name);
                }

                _position += piece.Length;
                buffer = buffer[piece.Length..];
            }
        }

        public override void Flush()
        {
            // Each write is the kernel's write on its own stream, done when it returns.
        }

        public override long Seek(long offset, SeekOrigin origin)
        {
            Position = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                SeekOrigin.End => Length + offset,
                _ => throw new ArgumentOutOfRangeException(nameof(origin)),
            };
            return _position;
        }

        public override void SetLength(long value)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            Status s = Request(IsolationOp.StreamSetLength, default, value);
            if (s.IsError)
            {
                throw new IOException("the kernel could not set the length: " + s.Name);
            }
        }

        /// <summary>A write (at this stream's position) or a length change: a request whose reply is a status.</summary>
        private Status Request(IsolationOp op, ReadOnlySpan<byte> data, long length)
        {
            IsolationChannel channel = files.Channel;
            Conversation c = channel.Enter();
            try
            {
                RecordWriter w = c.BeginCall(op);
                w.I64(handle);
                if (op == IsolationOp.StreamWrite)
                {
                    w.I64(_position);
                    data.CopyTo(w.Data(data.Length));
                }
                else
                {
                    w.I64(length);
                }

                return files.Context.Request(c, ref w);
            }
            finally
            {
                channel.Leave(c);
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && !_closed)
            {
                _closed = true;
                IsolationChannel channel = files.Channel;
                Conversation c = channel.Enter();
                try
                {
                    RecordWriter w = c.BeginCall(IsolationOp.StreamClose);
                    w.I64(handle);
                    _ = files.Context.Request(c, ref w);
                }
                finally
                {
                    channel.Leave(c);
                }
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>ISecurityCenter in a driver host: every call a request to the kernel.</summary>
internal sealed class RemoteSecurityCenter(RemoteDriverContext context) : ISecurityCenter
{
    public Status RegisterProduct(SecurityProductKind kind, string displayName, out CallbackCookie cookie)
    {
        cookie = default;
        if (displayName is null)
        {
            return Status.InvalidParameter;
        }

        Conversation c = context.Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.RegisterProduct);
            w.I32((int)kind);
            w.String(displayName);
            return context.ReadCookie(c, ref w, out cookie);
        }
        finally
        {
            context.Channel.Leave(c);
        }
    }

    public Status ReportState(CallbackCookie cookie, ProductState state)
    {
        Conversation c = context.Channel.Enter();
        try
        {
            RecordWriter w = c.BeginCall(IsolationOp.ReportProductState);
            w.I64(cookie.Value);
            w.I32((int)state);
            return context.Request(c, ref w);
        }
        finally
        {
            context.Channel.Leave(c);
        }
    }

    public Status UnregisterProduct(CallbackCookie cookie) => context.Cookie(IsolationOp.UnregisterProduct, cookie);

    public Status ListProducts(out IReadOnlyList<SecurityProduct> products) => RemoteProcesses.ListProducts(context, out products);
}
