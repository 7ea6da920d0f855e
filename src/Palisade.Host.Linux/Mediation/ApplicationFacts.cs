using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Palisade.Api;
using Palisade.Interop;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// What the network classify context says about the process's program beyond its path: the identity of the image it
/// runs and its SHA-256 (both through /proc/PID/exe, the very file the process runs whatever its path names now), and
/// its arguments (/proc/PID/cmdline). Read only for operations some filter watches; the digest only where a filter tests
/// it, and cached per file identity and change stamp, so a program is read whole once until it changes.
/// </summary>
internal sealed unsafe class ApplicationFacts
{
    /// <summary>Images larger than this are not hashed (the condition does not match them).</summary>
    public const long MaxHashedSize = 1L << 30;

    /// <summary>Cached digests kept at most; the cache is emptied when it would grow past this.</summary>
    public const int MaxCachedDigests = 1024;

    private readonly Lock _gate = new();
    private readonly Dictionary<FileIdentity, (FileChangeStamp Stamp, byte[] Digest)> _digests = [];

    /// <summary>The identity of the image <paramref name="processId"/> runs, default when it cannot be read.</summary>
    public static FileIdentity ImageIdentity(int processId)
    {
        Span<byte> path = stackalloc byte[32];
        Format(path, processId, "exe"u8);
        fixed (byte* p = path)
        {
            return FileFacts.Statx(Libc.AT_FDCWD, p, 0, ChangeStamps.Mask, out StatxBuffer st) == 0
                ? new FileIdentity(st.Device, st.Ino)
                : default;
        }
    }

    /// <summary>The arguments of <paramref name="processId"/> as /proc/PID/cmdline holds them, or null when unreadable.</summary>
    public static string[]? Arguments(int processId)
    {
        try
        {
            byte[] raw = File.ReadAllBytes("/proc/" + processId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "/cmdline");
            if (raw.Length == 0)
            {
                return null; // A kernel thread or a process being torn down: no arguments to tell.
            }

            int end = raw[^1] == 0 ? raw.Length - 1 : raw.Length;
            var args = new List<string>();
            int start = 0;
            for (int i = 0; i <= end; i++)
            {
                if (i == end || raw[i] == 0)
                {
                    args.Add(System.Text.Encoding.UTF8.GetString(raw, start, i - start));
                    start = i + 1;
                }
            }

            return [.. args];
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// The SHA-256 of the image <paramref name="processId"/> runs, from the cache when its identity and change stamp are
    /// those it was hashed with; empty when it cannot be read (gone, unreadable, larger than <see cref="MaxHashedSize"/>).
    /// </summary>
    public ReadOnlyMemory<byte> ImageDigest(int processId)
    {
        Span<byte> path = stackalloc byte[32];
        Format(path, processId, "exe"u8);
        int fd;
        fixed (byte* p = path)
        {
            fd = Libc.OpenAt(Libc.AT_FDCWD, p, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        }

        if (fd < 0)
        {
            return default;
        }

        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (FileFacts.StatxOf(fd, ChangeStamps.Mask, out StatxBuffer st) != 0 || (long)st.Size > MaxHashedSize)
        {
            return default;
        }

        var identity = new FileIdentity(st.Device, st.Ino);
        FileChangeStamp stamp = ChangeStamps.From(in st, fd);
        lock (_gate)
        {
            if (!stamp.IsNone && _digests.TryGetValue(identity, out var cached) && cached.Stamp == stamp)
            {
                return cached.Digest;
            }
        }

        byte[] digest;
        bool unchanged;
        try
        {
            // The stream does not own the descriptor: the stamp is taken again on it after the read.
            using var stream = new FileStream(new SafeFileHandle(fd, ownsHandle: false), FileAccess.Read, bufferSize: 0);
            digest = SHA256.HashData(stream);
            unchanged = !stamp.IsNone && ChangeStamps.Of(fd) == stamp;
        }
        catch (IOException)
        {
            return default;
        }

        // A stamp taken after the read that differs means the image changed while it was read: the digest is used for
        // this operation (it is of what was read) but not kept.
        if (unchanged)
        {
            lock (_gate)
            {
                if (_digests.Count >= MaxCachedDigests)
                {
                    _digests.Clear();
                }

                _digests[identity] = (stamp, digest);
            }
        }

        return digest;
    }

    private static void Format(Span<byte> into, int processId, ReadOnlySpan<byte> leaf) =>
        _ = new Supervision.Utf8Builder(into).Append("/proc/"u8).Append(processId).Append("/"u8).Append(leaf).Append("\0"u8);
}
