using System.Runtime.CompilerServices;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Supervision;
using Palisade.Host.Linux.Syscalls;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Authority;

/// <summary>
/// The object a guest's path names, resolved as the guest would resolve it (its root, directory and credentials,
/// <see cref="GuestResolver"/>): the directory that holds the last component is opened, then the last component is
/// looked at as the operation will use it (following a final symbolic link or not; for a name that does not exist
/// yet, the resolved directory and the name). The operation then acts on (that directory, the last component), so
/// what was decided is what is acted on, and a relative path under a directory deeper than PATH_MAX works.
/// </summary>
/// <remarks>
/// <para>
/// Nothing is resolved until asked: <see cref="ParentOf"/> opens the directory (a path operation asks before it acts),
/// and each fact a filter reads (<see cref="ResolvedPath"/>, <see cref="Identity"/>, <see cref="Type"/>,
/// <see cref="FileSystemType"/>) is resolved once, on the first read. An open no filter looks at costs nothing here.
/// </para>
/// <para>
/// A final symbolic link that the operation follows is followed here to tell filters where it leads (up to 40 links,
/// as Linux); the operation itself still acts on the original directory and name, so that Linux follows the link as it
/// would for the guest (fs.protected_symlinks included). A path with no last component ("/") is looked at whole.
/// </para>
/// <para>Reused: one instance per supervisor thread; <see cref="Begin"/> starts an operation, <see cref="End"/> closes
/// what it opened.</para>
/// </remarks>
internal sealed unsafe class GuestFileFacts : FileObjectFacts
{
    private const int MaxSymlinks = 40;
    private const uint StatMask = FileFacts.STATX_TYPE | FileFacts.STATX_MODE | FileFacts.STATX_INO;

    private readonly Name _name = new();
    private readonly Name _destination = new();
    private readonly byte[] _proc = new byte[40];
    private readonly byte[] _text = new byte[(2 * Scratch.PathMax) + 2];
    private readonly byte[] _link = new byte[Scratch.PathMax + 1];
    private readonly byte[] _directory = new byte[Scratch.PathMax + 1];
    private GuestAuthority? _guest;

    // Facts of the primary name, resolved once.
    private bool _resolved;
    private string? _path;
    private FileIdentity _identity;
    private FileObjectType _type;
    private int _factsDirectory = -1; // the directory the final name was looked up in (for fstatfs of a new name)
    private bool _factsDirectoryOwned;
    private int _objectFd = -1;       // an O_PATH handle of the object, opened for fstatfs only
    private long _fileSystemType;
    private bool _fileSystemKnown;
    private string? _newPath;

    /// <summary>Starts an operation for <paramref name="guest"/>: nothing named or resolved yet.</summary>
    public GuestFileFacts Begin(GuestAuthority guest)
    {
        End();
        _guest = guest;
        return this;
    }

    /// <summary>
    /// Names the object: <paramref name="path"/> (its first <paramref name="length"/> bytes, NUL-terminated after them)
    /// relative to <paramref name="baseFd"/> (a handle of the guest's directory, or AT_FDCWD for an absolute path).
    /// <paramref name="follow"/>: the operation follows a final symbolic link. <paramref name="creates"/>: the type the
    /// operation makes when the name does not exist (<see cref="FileObjectType.None"/> when it makes nothing).
    /// <paramref name="resolve"/>: the guest's own openat2 RESOLVE_* flags, which its directory is resolved with too.
    /// </summary>
    public void SetName(int baseFd, byte[] path, int length, bool follow, FileObjectType creates, ulong resolve = 0) =>
        _name.Set(baseFd, path, length, follow, creates, resolve);

    /// <summary>Names the destination of a rename or a link (never followed).</summary>
    public void SetDestination(int baseFd, byte[] path, int length) => _destination.Set(baseFd, path, length, follow: false, FileObjectType.None, 0);

    /// <summary>True when the name's directory has been resolved (by <see cref="ParentOf"/> or a filter's read).</summary>
    public bool HasParent => _name.Parent != Name.Unresolved;

    /// <summary>
    /// The directory handle that holds the last component of the name (<paramref name="destination"/>: of the
    /// destination), resolved as the guest on the first call; -errno when the guest's lookup fails. For a path with no
    /// last component it is the base, and <see cref="NameAt"/> is 0.
    /// </summary>
    public int ParentOf(bool destination = false)
    {
        Name n = destination ? _destination : _name;
        if (n.Parent == Name.Unresolved)
        {
            n.ResolveParent(_guest!, _directory);
        }

        return n.Parent;
    }

    /// <summary>Where the last component starts in the name's path (after <see cref="ParentOf"/>).</summary>
    public int NameAt(bool destination = false) => (destination ? _destination : _name).NameAt;

    /// <summary>Closes every handle the operation opened.</summary>
    public void End()
    {
        _name.Close();
        _destination.Close();
        if (_factsDirectoryOwned)
        {
            Libc.CloseOwned(_factsDirectory);
        }

        Libc.CloseOwned(_objectFd);
        _factsDirectory = _objectFd = -1;
        _factsDirectoryOwned = false;
        _resolved = _fileSystemKnown = false;
        _path = _newPath = null;
        _identity = default;
        _type = FileObjectType.Unknown;
        _fileSystemType = 0;
        _guest = null;
    }

    public override string? ResolvedPath()
    {
        Resolve();
        return _path;
    }

    public override string? ResolvedNewPath()
    {
        if (_newPath is null && _destination.IsSet)
        {
            int parent = ParentOf(destination: true);
            _newPath = parent < 0 && parent != Libc.AT_FDCWD ? null : PathIn(parent, _destination.Text, _destination.NameAt, _destination.Length);
        }

        return _newPath;
    }

    public override FileIdentity Identity()
    {
        Resolve();
        return _identity;
    }

    public override FileObjectType Type()
    {
        Resolve();
        return _type;
    }

    public override long FileSystemType()
    {
        Resolve();
        if (!_fileSystemKnown)
        {
            _fileSystemKnown = true;
            int fd = _objectFd >= 0 ? _objectFd : _factsDirectory;
            _fileSystemType = fd >= 0 && FileFacts.FileSystemOf(fd, out StatfsBuffer fs) == 0 ? fs.Type : 0;
        }

        return _fileSystemType;
    }

    /// <summary>Resolves the name's object once: its directory, then its last component as the operation uses it.</summary>
    private void Resolve()
    {
        if (_resolved || !_name.IsSet)
        {
            return;
        }

        _resolved = true;
        _type = FileObjectType.None;
        int parent = ParentOf();
        if (parent < 0 && parent != Libc.AT_FDCWD)
        {
            return;
        }

        byte[] text = _name.Text;
        int nameAt = _name.NameAt, end = _name.Length;
        bool follow = _name.Follow;
        int directory = parent;
        bool owned = false;
        for (int hops = 0; ; hops++)
        {
            int nameEnd = TrimSlashes(text, nameAt, end, out bool trailingSlash);
            follow |= trailingSlash;
            if (nameEnd == nameAt)
            {
                // No last component ("/", or the whole path is the base): the object is the directory itself.
                Adopt(directory, owned);
                ObjectFacts(directory, text, nameAt, nameAt);
                return;
            }

            byte saved = text[nameEnd];
            text[nameEnd] = 0;
            int error = StatAsGuest(directory, text, nameAt, out StatxBuffer stat);
            if (error == 0 && (stat.Mode & Libc.S_IFMT) == Libc.S_IFLNK && follow && hops < MaxSymlinks)
            {
                int linkLength = ReadLinkAsGuest(directory, text, nameAt);
                text[nameEnd] = saved;
                if (linkLength <= 0)
                {
                    Adopt(directory, owned);
                    return;
                }

                // Follow: the link's text, relative to the directory it is in (or to the guest's root when absolute).
                Array.Copy(_link, _text, linkLength);
                _text[linkLength] = 0;
                int from = _text[0] == (byte)'/' ? Libc.AT_FDCWD : directory;
                int next, at;
                bool nextOwned;
                if (PathResolution.SplitLast(_text.AsSpan(0, linkLength + 1), _directory, out int directoryLength, out at))
                {
                    next = GuestResolver.OpenDirectory(_guest!, from, _directory.AsSpan(0, directoryLength + 1), out nextOwned);
                }
                else
                {
                    (next, at, nextOwned) = (from, 0, false); // a link to "/": the object is the root itself
                }

                if (next == directory && !nextOwned)
                {
                    nextOwned = owned; // the link's target is in the same directory: keep it
                }
                else if (owned)
                {
                    Libc.CloseOwned(directory);
                }

                if (next < 0 && next != Libc.AT_FDCWD)
                {
                    return;
                }

                (directory, owned, text, nameAt, end) = (next, nextOwned, _text, at, linkLength);
                continue;
            }

            Adopt(directory, owned);
            if (error == Errno.ENOENT)
            {
                // A name that does not exist yet: its directory's path and the name; the type the call would make.
                _path = PathIn(directory, text, nameAt, nameEnd);
                _type = _name.Creates;
            }
            else if (error == 0)
            {
                _identity = new FileIdentity(stat.Device, stat.Ino);
                _type = Libc.TypeOf(stat.Mode);
                ObjectFacts(directory, text, nameAt, nameEnd);
            }

            text[nameEnd] = saved;
            return;
        }
    }

    /// <summary>
    /// The path of an existing object (NUL-terminated at <paramref name="nameEnd"/>, or the directory itself when the
    /// name is empty): its directory's path and its name, or, for "." and "..", the path of the object opened.
    /// </summary>
    private void ObjectFacts(int directory, byte[] text, int nameAt, int nameEnd)
    {
        ReadOnlySpan<byte> name = text.AsSpan(nameAt, nameEnd - nameAt);
        if (name.Length > 0 && !name.SequenceEqual("."u8) && !name.SequenceEqual(".."u8))
        {
            _path = PathIn(directory, text, nameAt, nameEnd);
            return;
        }

        // "." or "..", or no name at all: open the object itself to learn where it is.
        _objectFd = name.Length == 0
            ? directory == Libc.AT_FDCWD ? GuestResolver.OpenObject(_guest!, Libc.AT_FDCWD, "/\0"u8, follow: true) : -1
            : GuestResolver.OpenObject(_guest!, directory, text.AsSpan(nameAt, name.Length + 1), follow: false);
        int fd = _objectFd >= 0 ? _objectFd : directory;
        int length = fd >= 0 ? ProcFs.ReadSelfFdLink(fd, _proc, _link) : -1;
        _path = length > 0 ? System.Text.Encoding.UTF8.GetString(_link, 0, length) : null;
        if (_identity.IsNone && FileFacts.StatxOf(fd, StatMask, out StatxBuffer stat) == 0)
        {
            _identity = new FileIdentity(stat.Device, stat.Ino);
            _type = Libc.TypeOf(stat.Mode);
        }
    }

    /// <summary>Keeps the directory the final name was looked up in (for fstatfs), taking ownership when it was the resolution's own.</summary>
    private void Adopt(int directory, bool owned)
    {
        if (owned)
        {
            _factsDirectory = directory;
            _factsDirectoryOwned = true;
        }
        else
        {
            _factsDirectory = directory == Libc.AT_FDCWD ? -1 : directory;
        }
    }

    /// <summary>The directory's path (readlink of the supervisor's handle), a slash and the name (without trailing slashes).</summary>
    private string? PathIn(int directory, byte[] text, int nameAt, int end)
    {
        int nameEnd = TrimSlashes(text, nameAt, end, out _);
        int length;
        if (directory == Libc.AT_FDCWD)
        {
            // Only a path with no directory part reaches here with AT_FDCWD: the root itself.
            _link[0] = (byte)'/';
            length = 1;
        }
        else
        {
            length = ProcFs.ReadSelfFdLink(directory, _proc, _link);
            if (length <= 0)
            {
                return null;
            }
        }

        var builder = new System.Text.StringBuilder(length + (nameEnd - nameAt) + 1);
        builder.Append(System.Text.Encoding.UTF8.GetString(_link, 0, length));
        if (nameEnd > nameAt)
        {
            if (_link[length - 1] != (byte)'/')
            {
                builder.Append('/');
            }

            builder.Append(System.Text.Encoding.UTF8.GetString(text, nameAt, nameEnd - nameAt));
        }

        return builder.ToString();
    }

    /// <summary>The end of the name at <paramref name="nameAt"/> without trailing slashes; whether it had some.</summary>
    private static int TrimSlashes(byte[] text, int nameAt, int end, out bool trailingSlash)
    {
        int e = end;
        while (e > nameAt && text[e - 1] == (byte)'/')
        {
            e--;
        }

        trailingSlash = e < end;
        return e;
    }

    private int StatAsGuest(int directory, byte[] text, int nameAt, out StatxBuffer stat)
    {
        stat = default;
        fixed (byte* p = &text[nameAt])
        fixed (StatxBuffer* b = &stat)
        {
            var call = new SyscallAction
            {
                Number = Sys.Statx, A1 = directory, A2 = (long)p, A3 = Libc.AT_SYMLINK_NOFOLLOW, A4 = StatMask, A5 = (long)b,
            };
            long r = GuestAction.Run(_guest!, ref call);
            return r < 0 ? (int)-r : 0;
        }
    }

    private int ReadLinkAsGuest(int directory, byte[] text, int nameAt)
    {
        fixed (byte* p = &text[nameAt])
        fixed (byte* l = _link)
        {
            var call = new SyscallAction { Number = Sys.Readlinkat, A1 = directory, A2 = (long)p, A3 = (long)l, A4 = Scratch.PathMax };
            return (int)GuestAction.Run(_guest!, ref call);
        }
    }

    /// <summary>One name of an operation: where it starts from, its text, and its resolved directory.</summary>
    private sealed class Name
    {
        public const int Unresolved = int.MinValue;

        public int Base;
        public byte[] Text = [];
        public int Length;
        public bool Follow;
        public FileObjectType Creates;
        public ulong Resolve;
        public int Parent = Unresolved;
        public int NameAt;
        public bool IsSet;
        private bool _owned;

        public void Set(int baseFd, byte[] path, int length, bool follow, FileObjectType creates, ulong resolve)
        {
            Close();
            (Base, Text, Length, Follow, Creates, Resolve, IsSet) = (baseFd, path, length, follow, creates, resolve, true);
        }

        /// <summary>Opens the directory holding the last component as the guest (the base itself for a single component).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void ResolveParent(GuestAuthority guest, byte[] directory)
        {
            if (!PathResolution.SplitLast(Text.AsSpan(0, Length + 1), directory, out int directoryLength, out NameAt))
            {
                (Parent, NameAt, _owned) = (Base, 0, false);
                return;
            }

            Parent = GuestResolver.OpenDirectory(guest, Base, directory.AsSpan(0, directoryLength + 1), out _owned, Resolve);
        }

        public void Close()
        {
            if (_owned)
            {
                Libc.CloseOwned(Parent);
            }

            (Parent, NameAt, _owned, IsSet, Text) = (Unresolved, 0, false, false, []);
        }
    }
}
