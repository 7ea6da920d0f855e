// Linked into every sample driver: reading a configuration file (signatures, rules, allow-list) at load. A driver
// runs inside the kernel process, where plain System.IO would run with the kernel's identity and outside every
// filter; the driver verifier refuses it. The file is read through the driver API's own I/O instead, on no filter's
// behalf, so that every minifilter (self-protection, say) sees and may refuse the open, as for any program.
using System.Diagnostics.CodeAnalysis;
using System.Text;
using Palisade.Api;

namespace Palisade.Drivers;

internal static class ConfigurationFile
{
    /// <summary>Reads a whole UTF-8 text file (a byte order mark is honoured) through <see cref="IFilterManager.OpenFile(CallbackCookie, string, FileAccess, out Stream?)"/>.</summary>
    /// <param name="files">The driver's filter manager.</param>
    /// <param name="path">The file, absolute or relative to the kernel's working directory.</param>
    /// <param name="text">The content, when it could be read.</param>
    /// <param name="error">Why it could not, naming the file and the status.</param>
    /// <returns>True when the file was read.</returns>
    public static bool TryRead(IFilterManager files, string path, [NotNullWhen(true)] out string? text, [NotNullWhen(false)] out string? error)
    {
        text = null;
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (ArgumentException e)
        {
            error = $"cannot read \"{path}\": {e.Message}";
            return false;
        }

        Status s = files.OpenFile(default, full, FileAccess.Read, out Stream? stream);
        if (s.IsError || stream is null)
        {
            error = $"cannot read \"{path}\": {s.Name}";
            return false;
        }

        try
        {
            using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            text = reader.ReadToEnd();
            error = null;
            return true;
        }
        catch (IOException e)
        {
            error = $"cannot read \"{path}\": {e.Message}";
            return false;
        }
    }
}
