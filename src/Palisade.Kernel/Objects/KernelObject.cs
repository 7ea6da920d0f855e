namespace Palisade.Kernel.Objects;

/// <summary>
/// The header every kernel object carries: its type, an optional name in the object directory, and a reference
/// count (handles and kernel references). When the count drops to zero the type's delete procedure runs.
/// </summary>
internal abstract class KernelObject
{
    private int _references = 1;

    protected KernelObject(ObjectType type, string? name)
    {
        Type = type;
        Name = name;
    }

    public ObjectType Type { get; }

    public string? Name { get; }

    public int ReferenceCount => Volatile.Read(ref _references);

    public void AddReference() => Interlocked.Increment(ref _references);

    /// <summary>Drops one reference; the last one runs the type's delete procedure.</summary>
    public void Release()
    {
        int left = Interlocked.Decrement(ref _references);
        if (left == 0)
        {
            Type.InvokeDelete(this);
        }
    }
}
