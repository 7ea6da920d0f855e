// Registry paths: absolute, rooted at \Registry, components separated by a single backslash, compared without
// regard to case. Parsing works on spans so that resolving a path allocates nothing.
using Palisade.Api;

namespace Palisade.Kernel.Registry;

internal static class RegistryPath
{
    /// <summary>The name of the root key, the first component of every path.</summary>
    public const string RootName = "Registry";

    /// <summary>
    /// Checks that <paramref name="path"/> is a well-formed absolute registry path within the limits.
    /// </summary>
    /// <returns><see cref="Status.Success"/>, or <see cref="Status.ObjectNameInvalid"/> for a path that is not
    /// rooted at <c>\Registry</c>, has an empty component, a component longer than 255 characters, a NUL character,
    /// or more than 512 components below the root.</returns>
    public static Status Validate(ReadOnlySpan<char> path)
    {
        if (path.Length < 2 || path[0] != '\\')
        {
            return Status.ObjectNameInvalid;
        }

        var components = new Components(path);
        if (!components.MoveNext() || !components.Current.Equals(RootName, StringComparison.OrdinalIgnoreCase))
        {
            return Status.ObjectNameInvalid;
        }

        int depth = 0;
        while (components.MoveNext())
        {
            if (!IsValidKeyName(components.Current) || ++depth > RegistryLimits.MaxDepth)
            {
                return Status.ObjectNameInvalid;
            }
        }

        // A trailing backslash leaves an empty component that the enumerator does not yield.
        return path[^1] == '\\' ? Status.ObjectNameInvalid : Status.Success;
    }

    /// <summary>True for a key name (one component): 1 to 255 characters, no backslash, no NUL.</summary>
    public static bool IsValidKeyName(ReadOnlySpan<char> name) =>
        name.Length is > 0 and <= RegistryLimits.MaxKeyNameLength && name.IndexOfAny('\\', '\0') < 0;

    /// <summary>True for a value name: 0 (the default value) to 16383 characters, no NUL.</summary>
    public static bool IsValidValueName(ReadOnlySpan<char> name) =>
        name.Length <= RegistryLimits.MaxValueNameLength && !name.Contains('\0');

    /// <summary>
    /// Splits a path into its components. Empty components (doubled or trailing backslashes) are yielded as empty
    /// spans except at the very end; <see cref="Validate"/> rejects them.
    /// </summary>
    public ref struct Components
    {
        private readonly ReadOnlySpan<char> _path;
        private int _next;

        public Components(ReadOnlySpan<char> path)
        {
            _path = path;
            _next = path.Length > 0 && path[0] == '\\' ? 1 : 0;
            CurrentStart = _next;
            Current = default;
        }

        public ReadOnlySpan<char> Current { get; private set; }

        /// <summary>Where <see cref="Current"/> starts in the path, so a caller can take the rest of the path from it.</summary>
        public int CurrentStart { get; private set; }

        public bool MoveNext()
        {
            if (_next >= _path.Length)
            {
                return false;
            }

            ReadOnlySpan<char> rest = _path[_next..];
            int slash = rest.IndexOf('\\');
            CurrentStart = _next;
            if (slash < 0)
            {
                Current = rest;
                _next = _path.Length;
            }
            else
            {
                Current = rest[..slash];
                _next += slash + 1;
            }

            return true;
        }
    }
}
