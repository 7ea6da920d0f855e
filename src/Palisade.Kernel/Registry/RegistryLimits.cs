namespace Palisade.Kernel.Registry;

/// <summary>The registry's limits, the Windows ones. Each violation is refused with a status, never truncated.</summary>
internal static class RegistryLimits
{
    /// <summary>Longest key name (one path component), in UTF-16 characters.</summary>
    public const int MaxKeyNameLength = 255;

    /// <summary>Longest value name, in UTF-16 characters.</summary>
    public const int MaxValueNameLength = 16_383;

    /// <summary>Deepest key, counted in components below <c>\Registry</c>.</summary>
    public const int MaxDepth = 512;

    /// <summary>Largest value data, in bytes.</summary>
    public const int MaxValueDataLength = 1 << 20;
}
