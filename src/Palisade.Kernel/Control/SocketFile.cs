using Palisade.Api;
using Palisade.Interop;

namespace Palisade.Kernel.Control;

/// <summary>The file of a socket the kernel listens on (the control socket, a driver's port).</summary>
internal static class SocketFile
{
    /// <summary>
    /// Removes <paramref name="path"/> when it still is the socket file the kernel bound (<paramref name="identity"/>), never
    /// another file put there since; a file that cannot be removed is left for the next owner of the name, which replaces it.
    /// The caller still holds the lock that keeps any other kernel from binding the name.
    /// </summary>
    public static void RemoveIfSame(string path, FileIdentity identity)
    {
        try
        {
            if (Libc.FileIdentityOf(path, out FileIdentity now, out _) == 0 && now == identity)
            {
                File.Delete(path);
            }
        }
        catch (IOException)
        {
        }
    }
}
