// A driver package read from disk into memory in one pass. Everything after this point (digest, signature check,
// metadata check, assembly load) works on these bytes, never on the files again, so a package swapped on disk
// between verification and load cannot get unverified code into the kernel.
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Palisade.Kernel.Drivers;

/// <summary>One file of a package: its path relative to the package root (with '/' separators), its content and its SHA-256.</summary>
internal sealed class PackageFile
{
    public PackageFile(string path, byte[] content, Palisade.Api.FileIdentity identity = default)
    {
        Path = path;
        Content = content;
        Sha256 = SHA256.HashData(content);
        Identity = identity;
    }

    /// <summary>The identity (device and inode) of the file these bytes were read from, through the same descriptor.</summary>
    public Palisade.Api.FileIdentity Identity { get; }

    /// <summary>The path relative to the package root, '/'-separated, printable ASCII.</summary>
    public string Path { get; }

    /// <summary>The file's content as read.</summary>
    public byte[] Content { get; }

    /// <summary>The SHA-256 of <see cref="Content"/>.</summary>
    public byte[] Sha256 { get; }
}

/// <summary>A package folder snapshot: every file except the signature, sorted by path, plus the signature file if present.</summary>
internal sealed class DriverPackage
{
    /// <summary>The detached signature's file name at the package root. It is the only file the signature does not cover.</summary>
    public const string SignatureFileName = "signature.json";

    /// <summary>Upper bounds that keep a hostile package from exhausting memory while it is read.</summary>
    public const int MaxFiles = 4096;

    /// <summary>The largest total size of a package's files, 256 MiB.</summary>
    public const long MaxTotalBytes = 256L * 1024 * 1024;

    private DriverPackage(string directory, IReadOnlyList<PackageFile> files, byte[]? signature, IReadOnlyList<Palisade.Api.FileIdentity> folders, Palisade.Api.FileIdentity signatureIdentity)
    {
        Directory = directory;
        Files = files;
        Signature = signature;
        Folders = folders;
        SignatureIdentity = signatureIdentity;
    }

    /// <summary>The identities of the package folder and the folders in it.</summary>
    public IReadOnlyList<Palisade.Api.FileIdentity> Folders { get; }

    /// <summary>The identity of signature.json (default when unsigned).</summary>
    public Palisade.Api.FileIdentity SignatureIdentity { get; }

    /// <summary>The full path of the package folder.</summary>
    public string Directory { get; }

    /// <summary>Every file but the signature, sorted by <see cref="PackageDigest.ComparePaths"/>.</summary>
    public IReadOnlyList<PackageFile> Files { get; }

    /// <summary>The content of signature.json, or null when the package is unsigned.</summary>
    public byte[]? Signature { get; }

    /// <summary>Finds a file by its relative path.</summary>
    public PackageFile? Find(string path)
    {
        foreach (PackageFile file in Files)
        {
            if (string.Equals(file.Path, path, StringComparison.Ordinal))
            {
                return file;
            }
        }

        return null;
    }

    /// <summary>Reads a package folder.</summary>
    /// <param name="directory">The package folder.</param>
    /// <param name="package">The snapshot when the folder could be read.</param>
    /// <param name="error">Why the folder is not a readable package, when it is not.</param>
    /// <returns>True when the folder was read.</returns>
    /// <remarks>Symbolic links and names that are not printable ASCII are refused: each would let the bytes that were
    /// signed differ from the bytes another reader of the folder sees. FIFOs, sockets and devices are refused because
    /// reading them blocks or never ends.</remarks>
    public static bool TryRead(string directory, [NotNullWhen(true)] out DriverPackage? package, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(directory);
        package = null;
        string root = System.IO.Path.GetFullPath(directory);
        var info = new DirectoryInfo(root);
        if (!info.Exists)
        {
            error = $"the driver package folder {root} does not exist.";
            return false;
        }

        if (info.LinkTarget is not null)
        {
            error = $"the driver package folder {root} is a symbolic link; give the real folder.";
            return false;
        }

        var files = new List<PackageFile>();
        var folders = new List<Palisade.Api.FileIdentity>();
        byte[]? signature = null;
        Palisade.Api.FileIdentity signatureIdentity = default;
        long total = 0;
        try
        {
            var options = new EnumerationOptions
            {
                RecurseSubdirectories = true,
                AttributesToSkip = 0,
                IgnoreInaccessible = false,
                ReturnSpecialDirectories = false,
            };
            foreach (FileSystemInfo entry in info.EnumerateFileSystemInfos("*", options))
            {
                string relative = System.IO.Path.GetRelativePath(root, entry.FullName).Replace('\\', '/');
                if (entry.LinkTarget is not null)
                {
                    error = $"the package contains a symbolic link, {relative}; packages may contain only regular files and folders.";
                    return false;
                }

                if (entry is DirectoryInfo)
                {
                    if (Palisade.Interop.Libc.FileIdentityOf(entry.FullName, followLinks: false, out Palisade.Api.FileIdentity folder, out _) == 0)
                    {
                        folders.Add(folder);
                    }

                    continue;
                }

                if (entry is not FileInfo file)
                {
                    error = $"the package contains {relative}, which is not a regular file.";
                    return false;
                }

                if (!IsValidPath(relative))
                {
                    error = $"the package contains a file whose name is not printable ASCII: {relative}.";
                    return false;
                }

                if (files.Count >= MaxFiles)
                {
                    error = $"the package has more than {MaxFiles} files.";
                    return false;
                }

                byte[]? content = ReadRegularFile(file.FullName, MaxTotalBytes - total, out Palisade.Api.FileIdentity identity, out string? refusal);
                if (content is null)
                {
                    error = refusal == "not regular" ? $"the package contains {relative}, which is not a regular file."
                        : refusal == "too large" ? $"the package is larger than {MaxTotalBytes / (1024 * 1024)} MiB."
                        : $"the driver package folder {root} could not be read: {relative}: {refusal}";
                    return false;
                }

                total += content.Length;
                if (relative == SignatureFileName)
                {
                    signature = content;
                    signatureIdentity = identity;
                }
                else
                {
                    files.Add(new PackageFile(relative, content, identity));
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"the driver package folder {root} could not be read: {e.Message}";
            return false;
        }

        files.Sort(static (a, b) => PackageDigest.ComparePaths(a.Path, b.Path));
        if (Palisade.Interop.Libc.FileIdentityOf(root, followLinks: false, out Palisade.Api.FileIdentity rootFolder, out _) == 0)
        {
            folders.Insert(0, rootFolder);
        }

        package = new DriverPackage(root, files, signature, folders, signatureIdentity);
        error = null;
        return true;
    }

    /// <summary>
    /// Reads a package file through one descriptor: opened without following a link and without blocking (a FIFO would
    /// block a reader forever, a device could be endless; .NET shows both as ordinary files), checked to be a regular
    /// file with fstat on that descriptor, then read from it. So the file whose type was checked is the file whose bytes
    /// are verified, and its identity is the identity of what was read. Null with the reason ("not regular", "too
    /// large", or an error) when it cannot be read.
    /// </summary>
    private static unsafe byte[]? ReadRegularFile(string path, long budget, out Palisade.Api.FileIdentity identity, out string? refusal)
    {
        identity = default;
        refusal = null;
        using Microsoft.Win32.SafeHandles.SafeFileHandle handle = Palisade.Interop.Libc.OpenForReading(path, out int errno);
        if (handle.IsInvalid)
        {
            refusal = errno == Palisade.Interop.Errno.ELOOP ? "not regular" : $"errno {errno}";
            return null;
        }

        if (Palisade.Interop.Libc.RegularFileIdentity(handle, out identity, out long size) is int statError and not 0)
        {
            refusal = statError == -1 ? "not regular" : $"errno {statError}";
            return null;
        }

        if (size > budget)
        {
            refusal = "too large";
            return null;
        }

        using var stream = new FileStream(handle, FileAccess.Read, bufferSize: 0);
        var content = new MemoryStream((int)size);
        stream.CopyTo(content);
        if (content.Length > budget)
        {
            refusal = "too large";
            return null;
        }

        return content.ToArray();
    }

    /// <summary>Package paths are printable ASCII (space included) without backslashes, so that the canonical digest
    /// text is unambiguous and sorts the same everywhere.</summary>
    internal static bool IsValidPath(string path)
    {
        if (path.Length == 0)
        {
            return false;
        }

        foreach (char c in path)
        {
            if (c is < (char)0x20 or > (char)0x7E or '\\')
            {
                return false;
            }
        }

        return true;
    }
}
