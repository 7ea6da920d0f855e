namespace Palisade.Kernel.Drivers;

/// <summary>Where a run places its drivers (<c>palisade run</c>'s <c>--isolated</c> and <c>--in-kernel</c>).</summary>
public enum DriverMode
{
    /// <summary>Each driver where its manifest asks (<c>hosting</c>); a manifest that says nothing means isolated in the
    /// protected flavor and inside the kernel in the compat flavor.</summary>
    Default,

    /// <summary>Every driver in a driver host process of its own, whatever its manifest says.</summary>
    Isolated,

    /// <summary>Every driver inside the kernel process (verified at load in the protected flavor), whatever its manifest
    /// says: the administrator's choice, for a driver that needs it or to measure the boundary.</summary>
    InKernel,
}
