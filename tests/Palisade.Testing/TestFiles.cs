using Palisade.Api;

namespace Palisade.Testing;

/// <summary>Facts about real files that the tests compare with what the kernel reports.</summary>
internal static class TestFiles
{
    /// <summary>The identity (device and inode) of <paramref name="path"/>, following links; fails the test when it cannot be read.</summary>
    public static FileIdentity IdentityOf(string path)
    {
        int errno = Palisade.Interop.Libc.FileIdentityOf(path, out FileIdentity identity, out _);
        Assert.True(errno == 0, $"stat {path} failed with errno {errno}");
        return identity;
    }
}
