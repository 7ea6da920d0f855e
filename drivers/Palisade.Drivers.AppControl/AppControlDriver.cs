// The sample application control: a process-create callback that lets a program image start only when the allow
// list names it, by path or by the SHA-256 of its content, and an image-load callback that holds every other image a
// process runs code from (#! interpreters, the ELF interpreter, shared libraries, dlopen) to the same list; in audit
// mode it only reports what it would deny.
//
// The digest is computed from the exact file that will run, never from whatever a path names a moment later:
// the driver opens the image with its own I/O (IFilterManager.OpenFile through the "appcontrol-io" filter), which
// reaches its "appcontrol" filter below; that filter's post-create reads the opened file with ReadFile, hashes it
// and records its identity, and the callback compares that identity with ProcessCreateInfo.File. Digests go to the
// kernel's verdict cache (IFilterManager.SetFileVerdict), bound to the file's identity and the change stamp the kernel
// took before the hash read it: whatever changes the file moves the stamp, and the next exec hashes it again.
using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using Palisade.Api;

namespace Palisade.Drivers.AppControl;

/// <summary>The application-control driver's entry point (manifest entry type).</summary>
public sealed class AppControlDriver : IDriver
{
    internal const string AllowListKey = "allowlist";
    internal const string ModeKey = "mode";
    internal const string FilterName = "appcontrol";
    internal const string FilterAltitude = "370000";
    internal const string IoFilterName = "appcontrol-io";
    internal const string IoFilterAltitude = "370001";
    internal const string ProductName = "Palisade Sample Application Control";
    private const int ChunkSize = 64 * 1024;
    private const int DigestSize = 32;

    // The driver's own buffers: the process-wide ArrayPool<T>.Shared belongs to the kernel too.
    private static readonly ArrayPool<byte> s_buffers = ArrayPool<byte>.Create(maxArrayLength: 1024 * 1024, maxArraysPerBucket: 64);

    [ThreadStatic]
    private static AppControlDriver? t_probeOwner;

    [ThreadStatic]
    private static FileIdentity t_probeFile;

    [ThreadStatic]
    private static ImageDigestContext? t_probeDigest;

    [ThreadStatic]
    private static IncrementalHash? t_sha256;

    private IDriverContext? _context;
    private AllowList? _allowList;
    private CallbackCookie _filter;
    private CallbackCookie _ioFilter;
    private CallbackCookie _processCreate;
    private CallbackCookie _imageLoad;
    private CallbackCookie _product;
    private long _hashes;

    /// <summary>True in enforce mode; false in audit mode.</summary>
    internal bool Enforce { get; private set; }

    /// <summary>How many images were hashed (cache hits are not): lets tests prove the cache works.</summary>
    internal long HashCount => Interlocked.Read(ref _hashes);

    /// <inheritdoc />
    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        if (!TryConfigure(context.Parameters, context.Files, out string? error))
        {
            context.ReportEvent("config-error", error, 0, null);
            return Status.InvalidParameter;
        }

        Status s = context.Files.RegisterFilter(new FilterRegistration
        {
            Name = FilterName,
            Altitude = FilterAltitude,
            // The filter reads only the driver's own probe of an image: a guest's open passes it without a callback.
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = PreCreate, PostOperation = PostCreate, Flags = FileOperationFlags.DriverIoOnly }],
        }, out _filter);
        if (s.IsError)
        {
            return s;
        }

        s = context.Files.RegisterFilter(new FilterRegistration
        {
            Name = IoFilterName,
            Altitude = IoFilterAltitude,
            // This filter only places the driver's own I/O above "appcontrol", so that the probe's open reaches it.
            Operations = [new FileOperationRegistration { Kind = FileOperationKind.Create, PreOperation = static (ref FileOperation _) => PreOperationStatus.SuccessNoCallback, Flags = FileOperationFlags.DriverIoOnly }],
        }, out _ioFilter);
        if (s.IsError)
        {
            return s;
        }

        s = context.Processes.RegisterProcessCreate(OnProcessCreate, out _processCreate);
        if (s.IsError)
        {
            return s;
        }

        s = context.Processes.RegisterImageLoad(OnImageLoad, out _imageLoad);
        if (s.IsError)
        {
            return s;
        }

        s = context.SecurityCenter.RegisterProduct(SecurityProductKind.ApplicationControl, ProductName, out _product);
        if (s.IsError)
        {
            return s;
        }

        context.ReportEvent("started", FormattableString.Invariant(
            $"mode {(Enforce ? "enforce" : "audit")}; {_allowList!.DigestCount} sha256 and {_allowList.PathCount} path entries"), 0, null);
        return Status.Success;
    }

    /// <inheritdoc />
    public void Unload()
    {
        if (_context is null)
        {
            return;
        }

        _context.SecurityCenter.UnregisterProduct(_product);
        _context.Processes.Unregister(_imageLoad);
        _context.Processes.Unregister(_processCreate);
        _context.Files.UnregisterFilter(_ioFilter);
        _context.Files.UnregisterFilter(_filter);
    }

    private bool TryConfigure(IReadOnlyDictionary<string, string> parameters, IFilterManager files, [NotNullWhen(false)] out string? error)
    {
        string mode = parameters.GetValueOrDefault(ModeKey, "audit");
        if (mode is not ("audit" or "enforce"))
        {
            error = ModeKey + " is \"" + mode + "\"; expected audit or enforce";
            return false;
        }

        Enforce = mode == "enforce";
        if (!parameters.TryGetValue(AllowListKey, out string? file))
        {
            error = AllowListKey + " is not set; it names the allow-list file";
            return false;
        }

        if (!ConfigurationFile.TryRead(files, file, out string? text, out string? why))
        {
            error = AllowListKey + ": " + why;
            return false;
        }

        if (!AllowList.TryParse(text, out _allowList, out why))
        {
            error = AllowListKey + " \"" + file + "\" " + why;
            return false;
        }

        error = null;
        return true;
    }

    private PreOperationStatus PreCreate(ref FileOperation op) =>
        ReferenceEquals(t_probeOwner, this) ? PreOperationStatus.SuccessWithCallback : PreOperationStatus.SuccessNoCallback;

    private void PostCreate(ref FileOperation op)
    {
        if (op.Status.IsError || op.File.IsNone || !ReferenceEquals(t_probeOwner, this))
        {
            return;
        }

        // The stamp first: the kernel took it from the probe's descriptor before anything read the file, so a change made
        // while hashing leaves the cached stamp behind.
        IFilterManager files = _context!.Files;
        FileChangeStamp stamp = op.ChangeStamp;
        t_probeFile = op.File;
        if (files.GetFileVerdict(_filter, op.File, stamp, out object? cached) == Status.Success && cached is ImageDigestContext known)
        {
            t_probeDigest = known;
            return;
        }

        if (Hash(files, op.File, stamp.IsNone ? -1 : stamp.Size, out ImageDigest digest).IsSuccess)
        {
            var context = new ImageDigestContext(digest);
            files.SetFileVerdict(_filter, op.File, stamp, context);
            t_probeDigest = context;
        }
    }

    /// <summary>
    /// Hashes the opened file. <paramref name="knownLength"/> is its size under its change stamp, or -1: a read that
    /// comes back short at that size is its end, so the hash does not ask once more to be told (isolated, every read is a
    /// round trip); a read short of it is not taken for the end.
    /// </summary>
    private Status Hash(IFilterManager files, FileIdentity file, long knownLength, out ImageDigest digest)
    {
        digest = default;
        IncrementalHash sha = t_sha256 ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = s_buffers.Rent(ChunkSize + DigestSize);
        Span<byte> result = buffer.AsSpan(ChunkSize, DigestSize);
        try
        {
            long offset = 0;
            while (true)
            {
                Status s = files.ReadFile(_filter, file, offset, buffer.AsSpan(0, ChunkSize), out int read);
                if (s.IsError)
                {
                    return s;
                }

                if (read <= 0)
                {
                    break;
                }

                sha.AppendData(buffer, 0, read);
                offset += read;
                if (read < ChunkSize && knownLength >= 0 && offset >= knownLength)
                {
                    break;
                }
            }

            Interlocked.Increment(ref _hashes);
            return Status.Success;
        }
        finally
        {
            // Also resets the hash after a failed read, so that the next image on this thread starts clean.
            sha.GetHashAndReset(result);
            digest = ImageDigest.FromBytes(result);
            s_buffers.Return(buffer);
        }
    }

    private Status OnProcessCreate(in ProcessCreateInfo info) => Decide(info.ProcessId, info.ImagePath, info.File, "");

    /// <summary>
    /// Every image other than the file an exec names (which <see cref="OnProcessCreate"/> decided): a script's interpreter,
    /// the ELF interpreter, shared libraries, dlopen, any file mapped executable. The allow list must name each of them
    /// (by path or digest), as it names programs.
    /// </summary>
    private Status OnImageLoad(in ImageLoadInfo info) =>
        info.Kind is ImageLoadKind.Executable or ImageLoadKind.Script || info.FileType != FileObjectType.Regular
            ? Status.Success
            : Decide(info.ProcessId, info.ImagePath, info.File, info.Kind switch
            {
                ImageLoadKind.ScriptInterpreter => " (script interpreter)",
                ImageLoadKind.ElfInterpreter => " (ELF interpreter)",
                _ => " (executable mapping)",
            });

    private Status Decide(int processId, string imagePath, FileIdentity file, string kind)
    {
        AllowList list = _allowList!;
        if (list.AllowsPath(imagePath))
        {
            return Status.Success;
        }

        // Always through the probe: its open gives the kernel the descriptor to take the image's change stamp from; an
        // unchanged image is found in the verdict cache there and not hashed again.
        string? problem = Probe(imagePath, file, out ImageDigestContext? digest);
        if (digest is not null && list.AllowsDigest(digest.Digest))
        {
            return Status.Success;
        }

        string message = imagePath + kind + (digest is not null ? " (sha256 " + digest.Hex + ")" : "")
            + (problem ?? " is not on the allow list");
        if (!Enforce)
        {
            _context!.ReportEvent("audit", "would deny " + message, processId, imagePath);
            return Status.Success;
        }

        _context!.ReportEvent("blocked", "denied " + message, processId, imagePath);
        return Status.AccessDenied;
    }

    /// <summary>Hashes the image through the driver's own I/O; returns why no trustworthy digest came back, or null.</summary>
    private string? Probe(string imagePath, FileIdentity file, out ImageDigestContext? digest)
    {
        digest = null;
        t_probeOwner = this;
        t_probeFile = default;
        t_probeDigest = null;
        try
        {
            Status s = _context!.Files.OpenFile(_ioFilter, imagePath, FileAccess.Read, out Stream? stream);
            stream?.Dispose();
            if (s.IsError)
            {
                return ": the image cannot be read (" + s.Name + ")";
            }

            if (!file.IsNone && t_probeFile != file)
            {
                return ": the file at that path is not the image about to run";
            }

            digest = t_probeDigest;
            return digest is null ? ": the image could not be hashed" : null;
        }
        finally
        {
            t_probeOwner = null;
            t_probeDigest = null;
        }
    }

    /// <summary>The cached digest of one image file (its verdict in the kernel's cache).</summary>
    private sealed class ImageDigestContext(ImageDigest digest)
    {
        public ImageDigest Digest { get; } = digest;

        public string Hex { get; } = digest.ToString();
    }
}
