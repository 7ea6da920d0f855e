// The verdict cache's additions in a driver host: the kernel keeps the verdicts (and their flags, on which it skips the
// post-create crossing itself); the host only names them by number (RemoteApi.cs).
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

internal sealed partial class RemoteFiles
{
    public Status SetFileVerdict(CallbackCookie cookie, FileIdentity file, FileChangeStamp stamp, object verdict) =>
        SetFileVerdict(cookie, file, stamp, verdict, FileVerdictFlags.None);

    public Status ClearFileVerdicts(CallbackCookie cookie) => Context.Cookie(IsolationOp.ClearFileVerdicts, cookie);
}
