using Palisade.Api;

namespace Palisade.TestDrivers.Sample;

// Entry types a manifest may name by mistake; the loader refuses each with its own message.

/// <summary>A public class that is not a driver.</summary>
public sealed class NotADriver
{
    public override string ToString() => nameof(NotADriver);
}

/// <summary>A driver base class that cannot be instantiated.</summary>
public abstract class AbstractDriver : IDriver
{
    public abstract Status Load(IDriverContext context);

    public void Unload()
    {
    }
}

/// <summary>A driver whose only constructor takes an argument the loader cannot supply.</summary>
public sealed class DriverWithoutDefaultConstructor(string name) : IDriver
{
    public string Name { get; } = name;

    public Status Load(IDriverContext context) => Status.Success;

    public void Unload()
    {
    }
}

/// <summary>A driver whose constructor throws.</summary>
public sealed class ThrowingConstructorDriver : IDriver
{
    public ThrowingConstructorDriver() => throw new InvalidOperationException("the constructor refuses to run");

    public Status Load(IDriverContext context) => Status.Success;

    public void Unload()
    {
    }
}
