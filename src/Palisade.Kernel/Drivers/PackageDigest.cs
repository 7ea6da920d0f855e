// The canonical text that a driver package signature covers. It is defined here once, byte for byte, because the
// signer (palisade driver sign) and the loader must agree on it exactly; see FormatStatement.
using System.Text;

namespace Palisade.Kernel.Drivers;

/// <summary>One entry of a signed file list: a package-relative path and the SHA-256 of its content.</summary>
internal sealed record SignedFile(string Path, byte[] Sha256);

/// <summary>
/// Builds the canonical statement of a package's content. The statement is UTF-8 (in fact ASCII) text:
/// <code>
/// palisade-driver-package-v1\n
/// &lt;sha256 of the file, 64 lowercase hex digits&gt; &lt;path relative to the package root, '/'-separated&gt;\n
/// … one line per file, every file of the package except signature.json (manifest.json included),
///   sorted by path in ordinal (byte) order
/// </code>
/// The signature is ECDSA P-256 over the SHA-256 of exactly these bytes, DER-encoded (RFC 3279).
/// Paths are printable ASCII without backslashes (<see cref="DriverPackage.IsValidPath"/>), so no path can forge a
/// line break or sort differently on another machine.
/// </summary>
internal static class PackageDigest
{
    /// <summary>The first line of every statement; a future format changes it.</summary>
    public const string Header = "palisade-driver-package-v1";

    /// <summary>The order of files in a statement: ordinal, which for ASCII paths is byte order.</summary>
    public static int ComparePaths(string left, string right) => string.CompareOrdinal(left, right);

    /// <summary>Formats the statement for a list of files already sorted by <see cref="ComparePaths"/>.</summary>
    /// <param name="files">The files, sorted, without duplicates.</param>
    /// <returns>The statement's bytes.</returns>
    public static byte[] FormatStatement(IReadOnlyList<SignedFile> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var text = new StringBuilder(Header.Length + 1 + (files.Count * 100));
        text.Append(Header).Append('\n');
        foreach (SignedFile file in files)
        {
            text.Append(Convert.ToHexStringLower(file.Sha256)).Append(' ').Append(file.Path).Append('\n');
        }

        return Encoding.ASCII.GetBytes(text.ToString());
    }

    /// <summary>
    /// The SHA-256 of the package's statement as it is now (every file's path and SHA-256, sorted): two reads of a package
    /// with the same content digest read the same bytes. The kernel hands it to a driver host so that the host loads
    /// only what the kernel verified.
    /// </summary>
    public static byte[] ContentDigest(DriverPackage package)
    {
        List<SignedFile> files = Describe(package);
        files.Sort((a, b) => ComparePaths(a.Path, b.Path));
        return System.Security.Cryptography.SHA256.HashData(FormatStatement(files));
    }

    /// <summary>The signed file list of a package as it is now.</summary>
    public static List<SignedFile> Describe(DriverPackage package)
    {
        ArgumentNullException.ThrowIfNull(package);
        var list = new List<SignedFile>(package.Files.Count);
        foreach (PackageFile file in package.Files)
        {
            list.Add(new SignedFile(file.Path, file.Sha256));
        }

        return list;
    }
}
