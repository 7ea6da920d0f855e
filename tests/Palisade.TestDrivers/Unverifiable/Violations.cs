// One violation of each verifier rule that C# can express; the IL-only ones (type confusion, a native integer used as
// an address, read-only writes, method pointers) are built by the tests themselves. Each class is the "method it
// occurs in" a finding names.
using System.Buffers;
using System.Linq.Expressions;
using System.Net.Sockets;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Palisade.Api;

[assembly: IgnoresAccessChecksTo("Palisade.Kernel")]

namespace System.Runtime.CompilerServices
{
    /// <summary>The runtime honours this attribute by its name, whatever assembly defines it.</summary>
    [AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
    internal sealed class IgnoresAccessChecksToAttribute(string assemblyName) : Attribute
    {
        public string AssemblyName { get; } = assemblyName;
    }
}

namespace Palisade.TestDrivers.Unverifiable
{
    public sealed class OutsideAllowlist
    {
        public static object Parse() => System.Xml.Linq.XElement.Parse("<a/>");
    }

    public sealed class PrivateReflection
    {
        public static void Patch(object target) =>
            target.GetType().GetField("_enabled", BindingFlags.NonPublic | BindingFlags.Instance)!.SetValue(target, false);
    }

    public sealed class AccessorTarget
    {
        private int _secret = 1;

        public int Secret => _secret;
    }

    public static class UnsafeAccess
    {
        [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_secret")]
        public static extern ref int Secret(AccessorTarget target);
    }

    public static class Pointers
    {
        public static unsafe long Peek(long* address) => *address;
    }

    public static class FunctionPointers
    {
        private static int Twice(int x) => 2 * x;

        public static unsafe int Call()
        {
            delegate*<int, int> f = &Twice;
            return f(21);
        }
    }

    public static class StackAllocation
    {
        public static int Sum(int n)
        {
            Span<byte> bytes = stackalloc byte[n];
            return bytes.Length;
        }
    }

    public static class UnsafeClass
    {
        public static string Reinterpret(object value) => Unsafe.As<object, string>(ref value);
    }

    public static class RawMemory
    {
        public static IntPtr Allocate() => Marshal.AllocHGlobal(64);
    }

    public static class MarshalViews
    {
        public static Span<int> View(Span<byte> bytes) => MemoryMarshal.Cast<byte, int>(bytes);
    }

    public static partial class PInvoke
    {
        [DllImport("libc", EntryPoint = "getpid")]
        public static extern int GetProcessId();
    }

    public static class CodeGeneration
    {
        public static object Emit() => new DynamicMethod("generated", typeof(int), Type.EmptyTypes);

        public static Func<int> Compile()
        {
            Expression<Func<int>> expression = () => 42;
            return expression.Compile();
        }
    }

    public static class ProcessControl
    {
        public static void Stop() => Environment.Exit(3);
    }

    public static class FileSystem
    {
        public static string Read() => File.ReadAllText("/proc/self/maps");
    }

    public static class Network
    {
        public static object Open() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    }

    public static class Threads
    {
        public static void Start() => new Thread(() => { }).Start();
    }

    public static class SharedState
    {
        public static byte[] Rent() => ArrayPool<byte>.Shared.Rent(16);
    }

    [StructLayout(LayoutKind.Explicit)]
    public struct Overlay
    {
        [FieldOffset(0)]
        public object Reference;

        [FieldOffset(0)]
        public string Text;
    }

    public ref struct RefField
    {
        public ref int Target;
    }

    public static class TypedReferences
    {
        public static Type Of(int value)
        {
            TypedReference reference = __makeref(value);
            return __reftype(reference);
        }
    }

    public static class UninitializedLocals
    {
        [SkipLocalsInit]
        public static int Stale()
        {
            int value;
            Unused(out value);
            return value;
        }

        private static void Unused(out int value) => value = 0;
    }

    /// <summary>Asks for the kernel assembly by name at run time, as a driver that pokes the kernel would; reports whether it got it.</summary>
    public sealed class KernelByNameDriver : IDriver
    {
        public Status Load(IDriverContext context)
        {
            ArgumentNullException.ThrowIfNull(context);
            string outcome;
            try
            {
                outcome = "loaded " + Assembly.Load(new AssemblyName("Palisade.Kernel")).FullName;
            }
            catch (FileLoadException e)
            {
                // The runtime wraps the exception the load context threw; the kernel's reason is the inner message.
                outcome = "refused: " + (e.InnerException ?? e).Message;
            }

            context.ReportEvent("kernel-by-name", outcome, 0, null);
            return Status.Success;
        }

        public void Unload()
        {
        }
    }
}

namespace Palisade.TestDrivers.Unverifiable
{
    /// <summary>Driver code the runtime runs on its finalizer thread.</summary>
    public sealed class Finalized
    {
        ~Finalized() => GC.KeepAlive(this);
    }
}
