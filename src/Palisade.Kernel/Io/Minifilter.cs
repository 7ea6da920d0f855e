using System.Collections.Concurrent;
using Palisade.Api;
using Palisade.Kernel.Callbacks;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Io;

/// <summary>A registered minifilter (a filter object with its instance on the one volume): callbacks per operation and file contexts.</summary>
internal sealed class Minifilter : Registration
{
    public const int OperationCount = (int)FileOperationKind.Write + 1;

    public Minifilter(DriverObject? owner, decimal altitude, FilterRegistration r)
        : base(owner, altitude, r.Altitude)
    {
        Name = r.Name;
        Verdicts = new VerdictCache(r.VerdictCacheCapacity == 0 ? FilterRegistration.DefaultVerdictCacheCapacity : r.VerdictCacheCapacity);
        foreach (FileOperationRegistration op in r.Operations)
        {
            Pre[(int)op.Kind] = op.PreOperation;
            Post[(int)op.Kind] = op.PostOperation;
            if ((op.Flags & FileOperationFlags.DriverIoOnly) != 0)
            {
                DriverIoOnly |= 1 << (int)op.Kind;
            }
        }
    }

    /// <summary>The operation kinds (bit 1 &lt;&lt; kind) registered <see cref="FileOperationFlags.DriverIoOnly"/>: a guest's
    /// operation of such a kind passes the filter as if it were not registered.</summary>
    public int DriverIoOnly { get; }

    public string Name { get; }

    public FilePreCallback?[] Pre { get; } = new FilePreCallback?[OperationCount];

    public FilePostCallback?[] Post { get; } = new FilePostCallback?[OperationCount];

    public ConcurrentDictionary<FileIdentity, object> Contexts { get; } = new();

    /// <summary>The filter's verdicts bound to a change stamp (IFilterManager.SetFileVerdict).</summary>
    public VerdictCache Verdicts { get; }

    public bool Handles(FileOperationKind kind) => Pre[(int)kind] is not null || Post[(int)kind] is not null;

    /// <summary>A minifilter's pre callbacks can hold the guest operations they decide.</summary>
    public override bool CanPend => true;

    public override string Describe() => "minifilter " + Name + " at " + AltitudeText;

    /// <summary>Every slot of both callback arrays (the arrays themselves included), not only the first callback.</summary>
    protected override void AppendCallbacks(ref Guard.GuardHasher hasher)
    {
        hasher.Add((ulong)(uint)System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(Pre));
        hasher.Add((ulong)(uint)System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(Post));
        for (int i = 0; i < OperationCount; i++)
        {
            hasher.Add(Pre[i]);
            hasher.Add(Post[i]);
        }

        // Which operations reach the callbacks at all: flipping a bit would blind the filter to the guests.
        hasher.Add((ulong)(uint)DriverIoOnly);
    }

    public override Delegate? PrimaryCallback
    {
        get
        {
            foreach (FilePreCallback? p in Pre)
            {
                if (p is not null)
                {
                    return p;
                }
            }

            foreach (FilePostCallback? p in Post)
            {
                if (p is not null)
                {
                    return p;
                }
            }

            return null;
        }
    }
}

/// <summary>
/// What actually performs a file operation once the filters let it pass: the host's file system. The Linux host
/// implements it with the guest's own descriptors; the kernel's own I/O (a filter's <c>OpenFile</c>) uses
/// <see cref="KernelFileSystem"/>.
/// </summary>
internal interface IFileSystemPerformer
{
    /// <summary>Performs the operation described by <paramref name="operation"/>. For a create, sets
    /// <see cref="FileOperation.File"/> to the identity of the file opened.</summary>
    Status Perform(ref FileOperation operation);

    /// <summary>Undoes a create that a post callback cancelled (closes what was opened).</summary>
    void CancelCreate(ref FileOperation operation);

    /// <summary>Reads from the file a create opened (for a filter's post-create scan); returns the status.</summary>
    Status ReadOpened(long offset, Span<byte> buffer, out int bytesRead);

    /// <summary>The state of the file a create opened, or a cleanup released (see <see cref="FileStateQuery"/>).</summary>
    Status QueryOpened(Processes.ProcessTable guests, out FileState state);
}
