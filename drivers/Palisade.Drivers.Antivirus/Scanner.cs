// The scan engine: one pass over a file in chunks, feeding a SHA-256 of the whole content and looking for every
// byte pattern, with an overlap between chunks so that a pattern split across two reads is still found. The same
// engine scans through the filter manager's ReadFile (the exact file a guest opened) and through a stream the driver
// opened with its own I/O, behind IScanSource, a struct interface so that neither path allocates per scan. Buffers
// come from the driver's own pool: the process-wide ArrayPool<T>.Shared is shared with the kernel, and a driver
// inside the kernel may not use it (the verifier refuses it).
using System.Buffers;
using System.Security.Cryptography;
using Palisade.Api;

namespace Palisade.Drivers.Antivirus;

/// <summary>Where the scanner reads a file's bytes from.</summary>
internal interface IScanSource
{
    Status Read(long offset, Span<byte> buffer, out int bytesRead);
}

/// <summary>The file a create opened, read through <see cref="IFilterManager.ReadFile"/> in the post-create callback.</summary>
internal readonly struct OpenedFileSource(IFilterManager files, CallbackCookie filter, FileIdentity file) : IScanSource
{
    public Status Read(long offset, Span<byte> buffer, out int bytesRead) => files.ReadFile(filter, file, offset, buffer, out bytesRead);
}

/// <summary>The file of a held create, read through <see cref="IFilterManager.ReadFile(IPendedOperation, long, Span{byte}, out int)"/> from any thread.</summary>
internal readonly struct HeldFileSource(IFilterManager files, IPendedOperation held) : IScanSource
{
    public Status Read(long offset, Span<byte> buffer, out int bytesRead) => files.ReadFile(held, offset, buffer, out bytesRead);
}

/// <summary>A file the driver opened with its own I/O (IFilterManager.OpenFile).</summary>
internal readonly struct StreamSource(Stream stream) : IScanSource
{
    public Status Read(long offset, Span<byte> buffer, out int bytesRead)
    {
        try
        {
            stream.Position = offset;
            bytesRead = stream.Read(buffer);
            return Status.Success;
        }
        catch (Exception e) when (e is IOException or NotSupportedException)
        {
            bytesRead = 0;
            return Status.Unsuccessful;
        }
        catch (UnauthorizedAccessException)
        {
            bytesRead = 0;
            return Status.AccessDenied;
        }
    }
}

/// <summary>Scans files against a <see cref="SignatureSet"/>. Thread-safe: scans on different threads do not share state.</summary>
internal sealed class Scanner(SignatureSet signatures)
{
    private const int ChunkSize = 64 * 1024;
    private const int EicarWindow = 128;
    private const int HeadSize = EicarWindow + 1;
    private const int DigestSize = 32;

    // The driver's own buffers; renting allocates nothing once each thread's sizes are in the pool.
    private static readonly ArrayPool<byte> s_buffers = ArrayPool<byte>.Create(maxArrayLength: 1024 * 1024, maxArraysPerBucket: 64);

    [ThreadStatic]
    private static IncrementalHash? t_sha256;

    public SignatureSet Signatures { get; } = signatures;

    /// <summary>Scans a file up to <paramref name="maxBytes"/>.</summary>
    /// <param name="source">Where to read it from.</param>
    /// <param name="maxBytes">How much to read at most. A longer file is searched for patterns in that much only, and
    /// digests do not apply to it; this bounds the scan of endless character devices as well as of huge files.</param>
    /// <param name="knownLength">The file's size when its change stamp was taken (<see cref="FileChangeStamp.Size"/>), or -1
    /// when unknown. A read that returns less than it asked for and reaches that size is the end of the file: the scan
    /// does not ask again to be told so (isolated, each read is a round trip to the kernel). A read that comes back short
    /// before that size is not taken for the end.</param>
    /// <param name="detection">The name of the signature found, or null for a clean file.</param>
    /// <returns>Success when the file was read to its end or a signature was found; the read's error otherwise
    /// (then <paramref name="detection"/> is null and the file is neither clean nor infected).</returns>
    public Status Scan<TSource>(ref TSource source, long maxBytes, long knownLength, out string? detection)
        where TSource : struct, IScanSource
    {
        detection = null;
        int overlap = Math.Max(Signatures.LongestPattern - 1, 0);
        int working = ChunkSize + overlap;
        byte[] buffer = s_buffers.Rent(working + HeadSize + DigestSize);
        IncrementalHash sha = t_sha256 ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> head = buffer.AsSpan(working, HeadSize);
        Span<byte> digest = buffer.AsSpan(working + HeadSize, DigestSize);
        int headLength = 0;
        long offset = 0;
        int carried = 0;
        bool hashed = false;
        try
        {
            // Reading one byte past the limit tells a file of exactly maxBytes (whole) from a longer one.
            bool whole = false;
            while (offset <= maxBytes)
            {
                int asked = (int)Math.Min(ChunkSize, maxBytes + 1 - offset);
                Status s = source.Read(offset, buffer.AsSpan(carried, asked), out int read);
                if (s.IsError)
                {
                    return s;
                }

                if (read <= 0)
                {
                    whole = true;
                    break;
                }

                ReadOnlySpan<byte> fresh = buffer.AsSpan(carried, read);
                sha.AppendData(fresh);
                if (headLength < head.Length)
                {
                    int take = Math.Min(head.Length - headLength, read);
                    fresh[..take].CopyTo(head[headLength..]);
                    headLength += take;
                }

                ReadOnlySpan<byte> window = buffer.AsSpan(0, carried + read);
                foreach (BytePattern p in Signatures.Patterns)
                {
                    if (window.IndexOf(p.Bytes) >= 0)
                    {
                        detection = p.Name;
                        return Status.Success;
                    }
                }

                offset += read;
                carried = Math.Min(overlap, window.Length);
                window[^carried..].CopyTo(buffer);
                if (read < asked && knownLength >= 0 && offset >= knownLength)
                {
                    whole = true;
                    break;
                }
            }

            if (SignatureSet.IsEicar(head[..headLength]))
            {
                detection = SignatureSet.EicarName;
                return Status.Success;
            }

            if (!whole)
            {
                return Status.Success;
            }

            sha.GetHashAndReset(digest);
            hashed = true;
            detection = Signatures.FindDigest(Sha256Digest.FromBytes(digest));
            return Status.Success;
        }
        finally
        {
            if (!hashed)
            {
                // A scan that stopped early leaves data in the hash; start the next one on this thread clean.
                sha.GetHashAndReset(digest);
            }

            s_buffers.Return(buffer);
        }
    }
}
