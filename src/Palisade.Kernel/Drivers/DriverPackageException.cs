namespace Palisade.Kernel.Drivers;

/// <summary>
/// A request of the package tools (key generation, signing, the trust store) that cannot be carried out because of
/// its input: a key file that is not a P-256 key, a name already in use, a package that cannot be read. The message
/// is written for the person at the command line. The loader never throws it; it reports statuses instead.
/// </summary>
internal sealed class DriverPackageException : Exception
{
    public DriverPackageException(string message)
        : base(message)
    {
    }

    public DriverPackageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public DriverPackageException()
    {
    }
}
