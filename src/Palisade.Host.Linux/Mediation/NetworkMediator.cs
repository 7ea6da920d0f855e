using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Supervision;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Mediation;

/// <summary>
/// The socket family of <see cref="KernelMediator"/> (connect, bind, listen, accept, sends with an address): IPv4 and
/// IPv6 operations at a layer some filter watches go to the network filter engine.
/// </summary>
internal sealed class NetworkMediator(KernelHost host)
{
    /// <summary>0 to permit; EACCES when a filter blocks, ECONNABORTED for a blocked accept (as Status documents).</summary>
    public int Decide(in Requester requester, in NetworkCall call)
    {
        if (!RequestDecoder.IsInternet(call.Family))
        {
            return 0; // Local sockets are not network traffic.
        }

        if (!host.IsWatched(call.Operation, call.Family == Libc.AF_INET6))
        {
            return 0;
        }

        NetworkRequest request = RequestDecoder.Network(in call, ProcFs.ImageOf(requester.ProcessId));
        Status s = host.ClassifyNetwork(in requester, in request);
        if (s.IsSuccess)
        {
            return 0;
        }

        return call.Operation == NetworkOperation.Accept ? Errno.ECONNABORTED : StatusErrno.ErrnoOf(s);
    }
}
