// The hive's file on disk: the single-writer lock, appends, the torn-tail truncation at open, and compaction's
// write-aside-then-rename. It knows the file format only as far as the header; records are opaque bytes here.
//
// The lock is an exclusive flock(2) on "<hive>.lock", a file that is never renamed: locking the hive file itself would
// not survive compaction, which replaces the hive's inode by rename. .NET's own flock for FileShare.None usually
// refuses a second opener first (an IOException carrying EWOULDBLOCK); the explicit flock holds even when that is
// switched off.
using Palisade.Api;
using Palisade.Interop;
using Microsoft.Win32.SafeHandles;

namespace Palisade.Kernel.Registry;

internal sealed class HiveFile : IDisposable
{
    private const string LockSuffix = ".lock";
    private const string CompactSuffix = ".compact";

    private readonly FileStream _lock;
    private readonly bool _syncEachWrite;
    private FileStream _log;
    private bool _broken;

    private HiveFile(string path, FileStream lockFile, FileStream log, bool syncEachWrite)
    {
        FilePath = path;
        _lock = lockFile;
        _log = log;
        _syncEachWrite = syncEachWrite;
        Length = log.Length;
    }

    public string FilePath { get; }

    /// <summary>The length of the log: the offset of the next record.</summary>
    public long Length { get; private set; }

    /// <summary>
    /// Takes the hive's lock, creates the hive if it does not exist, and reads its whole content.
    /// </summary>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.SharingViolation"/> when another process (or another
    /// open in this one) has the hive; <see cref="Status.ObjectPathNotFound"/> when the directory does not exist;
    /// <see cref="Status.AccessDenied"/>; <see cref="Status.RegistryIoFailed"/> for other I/O errors.</returns>
    public static Status Open(string path, bool syncEachWrite, out HiveFile? file, out byte[] content)
    {
        file = null;
        content = [];
        string fullPath = Path.GetFullPath(path);
        FileStream? lockFile = null;
        FileStream? log = null;
        try
        {
            lockFile = new FileStream(fullPath + LockSuffix, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1);
            int error = FileLock.TryLockExclusive(lockFile.SafeFileHandle);
            if (error != 0)
            {
                lockFile.Dispose();
                return error == FileLock.WouldBlock ? Status.SharingViolation : Status.RegistryIoFailed;
            }

            // A compaction that died before its rename leaves its file behind; the hive itself is intact.
            File.Delete(fullPath + CompactSuffix);
            if (!File.Exists(fullPath))
            {
                Status created = CreateEmpty(fullPath);
                if (created.IsError)
                {
                    lockFile.Dispose();
                    return created;
                }
            }

            log = new FileStream(fullPath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1);
            content = ReadAll(log.SafeFileHandle);
            file = new HiveFile(fullPath, lockFile, log, syncEachWrite);
            return Status.Success;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log?.Dispose();
            lockFile?.Dispose();
            return lockFile is null && ex.HResult == FileLock.WouldBlock ? Status.SharingViolation : MapException(ex);
        }
    }

    /// <summary>Reads a hive file without taking its lock (for verification; the writer only appends).</summary>
    public static Status ReadContent(string path, out byte[] content)
    {
        content = [];
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
            content = ReadAll(stream.SafeFileHandle);
            return Status.Success;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return MapException(ex);
        }
    }

    /// <summary>
    /// Appends one record with a single write. On failure the file is cut back to its previous length so the log
    /// never holds a partial record followed by more records.
    /// </summary>
    public Status Append(ReadOnlySpan<byte> record)
    {
        if (_broken)
        {
            return Status.RegistryIoFailed;
        }

        try
        {
            RandomAccess.Write(_log.SafeFileHandle, record, Length);
            if (_syncEachWrite)
            {
                _log.Flush(flushToDisk: true);
            }

            Length += record.Length;
            return Status.Success;
        }
        catch (IOException)
        {
            try
            {
                _log.SetLength(Length);
            }
            catch (IOException)
            {
                // The tail is in an unknown state: refuse further writes; reopening discards the torn tail.
                _broken = true;
            }

            return Status.RegistryIoFailed;
        }
    }

    /// <summary>Cuts the file to <paramref name="length"/> (the end of the last good record) and makes it durable.</summary>
    public Status Truncate(long length)
    {
        try
        {
            _log.SetLength(length);
            _log.Flush(flushToDisk: true);
            Length = length;
            return Status.Success;
        }
        catch (IOException ex)
        {
            return MapException(ex);
        }
    }

    /// <summary>fsync(2) of the hive: every acknowledged write survives a power loss from here on.</summary>
    public Status Flush()
    {
        try
        {
            _log.Flush(flushToDisk: true);
            return Status.Success;
        }
        catch (IOException ex)
        {
            return MapException(ex);
        }
    }

    /// <summary>Starts writing a replacement hive beside the current one; the caller writes the header and records.</summary>
    public Status BeginRewrite(out FileStream? replacement)
    {
        replacement = null;
        try
        {
            replacement = new FileStream(FilePath + CompactSuffix, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
            return Status.Success;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return MapException(ex);
        }
    }

    /// <summary>
    /// Makes the replacement durable, renames it over the hive (atomic: a crash leaves the old or the new hive,
    /// never a mix), syncs the directory, and continues appending to it.
    /// </summary>
    public Status CompleteRewrite(FileStream replacement)
    {
        try
        {
            replacement.Flush(flushToDisk: true);
            File.Move(FilePath + CompactSuffix, FilePath, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            AbortRewrite(replacement);
            return MapException(ex);
        }

        _log.Dispose();
        _log = replacement;
        Length = replacement.Length;
        _broken = false;
        return SyncDirectory();
    }

    public void AbortRewrite(FileStream replacement)
    {
        replacement.Dispose();
        try
        {
            File.Delete(FilePath + CompactSuffix);
        }
        catch (IOException)
        {
            // Left for the next open, which deletes it before anything else.
        }
    }

    public void Dispose()
    {
        _log.Dispose();
        _lock.Dispose();
    }

    private static Status CreateEmpty(string path)
    {
        Span<byte> header = stackalloc byte[HiveFormat.HeaderSize];
        HiveFormat.WriteHeader(header);
        using (var stream = new FileStream(path + CompactSuffix, FileMode.Create, FileAccess.Write, FileShare.None, 1))
        {
            stream.Write(header);
            stream.Flush(flushToDisk: true);
        }

        File.Move(path + CompactSuffix, path);
        return SyncDirectory(path);
    }

    private Status SyncDirectory() => SyncDirectory(FilePath);

    private static Status SyncDirectory(string filePath)
    {
        string? directory = Path.GetDirectoryName(filePath);
        return directory is null || DirectorySync.Sync(directory) == 0 ? Status.Success : Status.RegistryIoFailed;
    }

    private static byte[] ReadAll(SafeFileHandle handle)
    {
        long length = RandomAccess.GetLength(handle);
        if (length > Array.MaxLength)
        {
            throw new IOException("The hive file is larger than the registry can load.");
        }

        var content = new byte[length];
        int read = 0;
        while (read < content.Length)
        {
            int n = RandomAccess.Read(handle, content.AsSpan(read), read);
            if (n == 0)
            {
                // The file shrank under us; what was read is what exists.
                Array.Resize(ref content, read);
                break;
            }

            read += n;
        }

        return content;
    }

    private static Status MapException(Exception ex) => ex switch
    {
        UnauthorizedAccessException => Status.AccessDenied,
        DirectoryNotFoundException => Status.ObjectPathNotFound,
        FileNotFoundException => Status.ObjectNameNotFound,
        _ => Status.RegistryIoFailed,
    };
}
