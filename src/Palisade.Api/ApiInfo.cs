using System;

namespace Palisade.Api;

/// <summary>The areas of the driver API, one per kind of callback a security product registers.</summary>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "every driver")]
public enum ApiArea
{
    /// <summary>Driver entry, context, status codes and life-cycle metadata.</summary>
    Core,
    /// <summary>Process and thread creation and exit, image loads.</summary>
    Processes,
    /// <summary>Handle operations on processes and threads.</summary>
    Objects,
    /// <summary>The configuration registry.</summary>
    Registry,
    /// <summary>File system minifilters.</summary>
    Files,
    /// <summary>The network filter engine.</summary>
    Network,
    /// <summary>Security product registration and health.</summary>
    SecurityCenter,
    /// <summary>Communication ports between a driver and user-mode programs.</summary>
    Ports,
}

/// <summary>Where an API stands in its life cycle.</summary>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "every driver")]
public enum ApiState
{
    /// <summary>Published for review; may still change before release.</summary>
    Draft,
    /// <summary>Released in a kernel version; kept compatible from then on.</summary>
    Released,
}

/// <summary>
/// Life-cycle metadata carried by every public API type: its area, the API version that introduced it, its state,
/// and the vendor scenarios it serves. <c>palisade api list</c> and the generated reference read it.
/// </summary>
[ApiInfo(ApiArea.Core, "1.0", ApiState.Draft, "every driver")]
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct | AttributeTargets.Interface | AttributeTargets.Enum | AttributeTargets.Delegate, Inherited = false)]
public sealed class ApiInfoAttribute : Attribute
{
    /// <summary>Records the metadata of one API type.</summary>
    /// <param name="area">The area the API belongs to.</param>
    /// <param name="introduced">The API version that introduced it, as <c>major.minor</c>.</param>
    /// <param name="state">Its life-cycle state.</param>
    /// <param name="scenarios">The vendor scenarios it serves, in plain words.</param>
    public ApiInfoAttribute(ApiArea area, string introduced, ApiState state, params string[] scenarios)
    {
        Area = area;
        Introduced = introduced;
        State = state;
        Scenarios = scenarios;
    }

    /// <summary>The area the API belongs to.</summary>
    public ApiArea Area { get; }

    /// <summary>The API version that introduced it, as <c>major.minor</c>.</summary>
    public string Introduced { get; }

    /// <summary>Its life-cycle state.</summary>
    public ApiState State { get; }

    /// <summary>The vendor scenarios it serves.</summary>
    public string[] Scenarios { get; }
}
