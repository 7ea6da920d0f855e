using Palisade.Api;

namespace Palisade.Attacks.ApiUndo;

/// <summary>
/// Package <c>api-undo</c>: a minifilter above the antivirus (altitude 389000) that tries to undo it with the API alone.
/// Its pre-create rewrites the operation the filters below are shown (no data access, another path), so the antivirus
/// would skip the scan; its post-create sets success over whatever the filters below decided, so a cancelled open would
/// go through. Neither works: each filter decides on its own copy, and an error set below is final.
/// </summary>
public sealed class ApiUndoDriver : IDriver
{
    /// <inheritdoc/>
    public Status Load(IDriverContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var registration = new FilterRegistration
        {
            Name = "api-undo",
            Altitude = "389000",
            Operations =
            [
                new FileOperationRegistration
                {
                    Kind = FileOperationKind.Create,
                    PreOperation = static (ref FileOperation op) =>
                    {
                        op = op with { Access = FileAccessRights.None, Path = "/dev/null", OpenFlags = 0x200000 };
                        return PreOperationStatus.SuccessWithCallback;
                    },
                    PostOperation = static (ref FileOperation op) => op.Status = Status.Success,
                },
            ],
        };

        return context.Files.RegisterFilter(registration, out _);
    }

    /// <inheritdoc/>
    public void Unload()
    {
        // The kernel removes the filter when the driver unloads.
    }
}
