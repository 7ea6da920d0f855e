using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Supervision;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Authority;

/// <summary>
/// The facts of the file behind one of the supervisor's descriptors: a file it opened for a guest (the post decision of
/// an open), or its copy of a guest's descriptor (a call on a descriptor such as fchmod, a reopen through
/// /proc/self/fd/N). Each fact is read from the descriptor the first time it is asked for: the identity and type with
/// fstat (unless the caller already had them), the path with a readlink of /proc/self/fd/N, the file system with fstatfs.
/// </summary>
/// <remarks>Reused: one instance per supervisor thread for each use, set at the start of an operation.</remarks>
internal sealed unsafe class DescriptorFacts : FileObjectFacts
{
    private readonly byte[] _proc = new byte[40];
    private readonly byte[] _buffer = new byte[Scratch.PathMax + 1];
    private int _fd = -1;
    private bool _stated;
    private FileIdentity _identity;
    private FileObjectType _type;
    private string? _path;
    private long _fileSystemType;
    private bool _fileSystemKnown;
    private StatxBuffer _statx;
    private bool _hasStatx;

    /// <summary>The descriptor the facts are read from.</summary>
    public int Descriptor => _fd;

    /// <summary>Starts an operation on <paramref name="fd"/> (not owned), whose facts are read on demand.</summary>
    public DescriptorFacts Set(int fd)
    {
        _fd = fd;
        _stated = false;
        _identity = default;
        _type = FileObjectType.Unknown;
        _path = null;
        _fileSystemKnown = false;
        _fileSystemType = 0;
        _hasStatx = false;
        return this;
    }

    /// <summary>Starts an operation on <paramref name="fd"/> whose fstat the caller already made.</summary>
    public DescriptorFacts Set(int fd, in Stat stat)
    {
        Set(fd);
        _stated = true;
        _identity = new FileIdentity(stat.Dev, stat.Ino);
        _type = Libc.TypeOf(stat.Mode);
        return this;
    }

    /// <summary>
    /// Starts an operation on <paramref name="fd"/> whose statx the caller already made (with at least the type, inode
    /// and unique mount id): the file system is then known from the mount without an fstatfs once the mount was seen.
    /// </summary>
    public DescriptorFacts Set(int fd, in StatxBuffer st)
    {
        Set(fd);
        _stated = true;
        _identity = new FileIdentity(st.Device, st.Ino);
        _type = Libc.TypeOf(st.Mode);
        _statx = st;
        _hasStatx = true;
        return this;
    }

    public override string? ResolvedPath()
    {
        if (_path is null && _fd >= 0)
        {
            int length = ProcFs.ReadSelfFdLink(_fd, _proc, _buffer);
            _path = length > 0 ? System.Text.Encoding.UTF8.GetString(_buffer, 0, length) : null;
        }

        return _path;
    }

    public override string? ResolvedNewPath() => null;

    public override FileIdentity Identity()
    {
        Stat();
        return _identity;
    }

    public override FileObjectType Type()
    {
        Stat();
        return _type;
    }

    public override long FileSystemType()
    {
        if (!_fileSystemKnown && _fd >= 0)
        {
            _fileSystemKnown = true;
            _fileSystemType = _hasStatx ? MountFileSystems.TypeOf(_fd, in _statx) : FileFacts.FileSystemOf(_fd, out StatfsBuffer fs) == 0 ? fs.Type : 0;
        }

        return _fileSystemType;
    }

    private void Stat()
    {
        if (_stated || _fd < 0)
        {
            return;
        }

        _stated = true;
        Stat stat;
        if (Libc.FStat(_fd, &stat) == 0)
        {
            _identity = new FileIdentity(stat.Dev, stat.Ino);
            _type = Libc.TypeOf(stat.Mode);
        }
    }
}
