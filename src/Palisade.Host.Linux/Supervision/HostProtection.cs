using System.Reflection;
using System.Runtime.CompilerServices;
using Palisade.Host.Linux.Filtering;
using Palisade.Host.Linux.Mediation;
using Palisade.Interop;
using Palisade.Kernel.Hosting;

namespace Palisade.Host.Linux.Supervision;

/// <summary>
/// What of the Linux host the kernel's guard watches, registered through the hosting surface (the kernel knows no host
/// type): the mediation code every decision passes through, and each supervisor's wiring (its seccomp listener and the
/// mediator it asks). A detour of <see cref="KernelMediator.PostOpen"/>, or a listener descriptor swapped so that the
/// supervisor serves a dead filter while another thread answers the guests, is then bug check 0x109.
/// </summary>
internal static unsafe class HostProtection
{
    private static readonly MethodInfo[] s_mediation =
    [
        Method(typeof(KernelMediator), nameof(KernelMediator.PreOpen)),
        Method(typeof(KernelMediator), nameof(KernelMediator.PostOpen)),
        Method(typeof(KernelMediator), nameof(KernelMediator.PathOperation)),
        Method(typeof(KernelMediator), nameof(KernelMediator.Exec)),
        Method(typeof(KernelMediator), nameof(KernelMediator.Network)),
        Method(typeof(KernelMediator), nameof(KernelMediator.ProcessAccess)),
        Method(typeof(FileMediator), nameof(FileMediator.PreOpen)),
        Method(typeof(FileMediator), nameof(FileMediator.PostOpen)),
        Method(typeof(FileMediator), nameof(FileMediator.PathOperation)),
    ];

    /// <summary>Puts the mediation code under the kernel's guard (once per kernel; again is harmless).</summary>
    public static void WatchMediation(KernelHost host)
    {
        foreach (MethodInfo m in s_mediation)
        {
            Palisade.Api.Status s = host.WatchCode(m);
            if (s.IsError)
            {
                throw new InvalidOperationException($"The guard refused to watch {m.DeclaringType?.Name}.{m.Name}: {s.Name}.");
            }
        }
    }

    private static MethodInfo Method(Type type, string name) =>
        type.GetMethod(name, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
        ?? throw new MissingMethodException(type.FullName, name);

    /// <summary>
    /// One supervisor's wiring, read from the supervisor itself on every sweep: the listener's descriptor number and the
    /// file it names (device and inode of the seccomp notification file), and the identity of the mediator it asks, the
    /// subscriptions it serves and the kernel surface behind the mediator.
    /// </summary>
    internal sealed class SupervisorWiring(Supervisor supervisor) : IHostWiring
    {
        public string Name { get; } = "supervisor listener " + supervisor.Listener.ToString(System.Globalization.CultureInfo.InvariantCulture);

        public int CopyState(Span<long> destination)
        {
            const int Count = 7;
            if (destination.Length < Count)
            {
                return -Count;
            }

            int listener = supervisor.Listener;
            ISyscallMediator mediator = supervisor.Mediator;
            Stat st;
            bool named = Libc.FStat(listener, &st) == 0;
            destination[0] = listener;
            destination[1] = named ? (long)st.Dev : -1;
            destination[2] = named ? (long)st.Ino : -1;
            destination[3] = RuntimeHelpers.GetHashCode(mediator);
            destination[4] = (long)supervisor.Families;
            destination[5] = mediator is KernelMediator kernel ? RuntimeHelpers.GetHashCode(kernel.Host) : 0;
            destination[6] = RuntimeHelpers.GetHashCode(supervisor);
            return Count;
        }
    }
}
