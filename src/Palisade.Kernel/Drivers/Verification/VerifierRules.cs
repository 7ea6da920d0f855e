// The rules of the driver verifier: each has a short id that refusals, `palisade driver verify` and the docs name,
// and a one-line reason. A driver that runs inside the kernel process shares the kernel's memory, threads and
// descriptors; these rules keep it to type-safe code that reaches the kernel only through Palisade.Api.
namespace Palisade.Kernel.Drivers.Verification;

/// <summary>One verifier rule: its id (PVnnn), a short name and why it exists.</summary>
/// <param name="Id">The id, for example <c>PV002</c>.</param>
/// <param name="Name">A short name, for example <c>private reflection</c>.</param>
/// <param name="Reason">Why code that breaks the rule cannot run inside the kernel.</param>
internal sealed record VerifierRule(string Id, string Name, string Reason)
{
    public override string ToString() => Id + " " + Name;
}

/// <summary>Every rule of the verifier.</summary>
internal static class VerifierRules
{
    public static readonly VerifierRule NotAllowed = new("PV001", "outside the allowlist",
        "a driver may use Palisade.Api, its own code and the base-library types listed as type-safe and unable to reach the kernel's memory, threads, descriptors or code");

    public static readonly VerifierRule Reflection = new("PV002", "private reflection",
        "reflection, and anything that binds members by name, reaches every field and method of the kernel, private or not");

    public static readonly VerifierRule UnsafeAccessor = new("PV003", "UnsafeAccessor",
        "UnsafeAccessorAttribute binds a method to any private field or method of any type, the kernel's included");

    public static readonly VerifierRule IgnoresAccessChecks = new("PV004", "IgnoresAccessChecksTo",
        "IgnoresAccessChecksToAttribute turns the runtime's access checks off for a whole assembly");

    public static readonly VerifierRule Pointers = new("PV005", "unsafe code and pointers",
        "a pointer, a pinned reference or an integer used as an address reads and writes any byte of the kernel process");

    public static readonly VerifierRule FunctionPointers = new("PV006", "function pointers and calli",
        "a function pointer or calli calls any code address with any signature");

    public static readonly VerifierRule StackAlloc = new("PV007", "stackalloc (localloc)",
        "localloc hands out stack memory through a pointer; too large a size ends the kernel process with a stack overflow");

    public static readonly VerifierRule UnsafeClass = new("PV008", "Unsafe and runtime helpers",
        "System.Runtime.CompilerServices.Unsafe and the runtime's helpers reinterpret references and read or write past the end of objects");

    public static readonly VerifierRule RawMemory = new("PV009", "Marshal, NativeMemory, GCHandle, SafeHandle",
        "raw memory, native handles and pinned objects are outside the type system");

    public static readonly VerifierRule MarshalViews = new("PV010", "MemoryMarshal and collection internals",
        "MemoryMarshal reinterprets memory as other types; the collection marshals expose the arrays behind immutable and kernel-held collections");

    public static readonly VerifierRule PInvoke = new("PV011", "P/Invoke and native code",
        "a P/Invoke, NativeLibrary or native method body calls native code with the kernel's privileges (mprotect, pwrite to its own code)");

    public static readonly VerifierRule CodeGeneration = new("PV012", "code generation",
        "Reflection.Emit, DynamicMethod and compiled expressions produce code that this verifier never saw");

    public static readonly VerifierRule AssemblyLoading = new("PV013", "assembly loading",
        "AssemblyLoadContext, Assembly.Load and AppDomain bring code into the kernel that this verifier never saw, or hand out every loaded assembly");

    public static readonly VerifierRule ProcessControl = new("PV014", "process control",
        "Environment.Exit and FailFast end the kernel without a bug check; environment, directory and process changes alter the kernel itself");

    public static readonly VerifierRule FileSystem = new("PV015", "direct file-system access",
        "plain file I/O runs with the kernel's identity and can write /proc/self/mem or the runtime's double-mapped code; drivers open files through IFilterManager");

    public static readonly VerifierRule Network = new("PV016", "sockets and network I/O",
        "a socket inside the kernel is a channel no network filter sees; drivers filter the guests' network through INetworkFilterEngine");

    public static readonly VerifierRule Threads = new("PV017", "threads outside the API",
        "driver code on threads, timers or thread-pool work of its own runs outside the kernel's containment: an exception there ends the kernel process and no deadline applies");

    public static readonly VerifierRule SharedState = new("PV018", "process-wide state",
        "shared pools, the console, culture, runtime switches and the garbage collector's settings belong to the whole kernel process, not to one driver");

    public static readonly VerifierRule ExplicitLayout = new("PV019", "explicit layout",
        "overlapping fields read one type's bytes as another type");

    public static readonly VerifierRule TypeSafety = new("PV020", "not type-safe IL",
        "IL whose stack types do not check reads and writes memory as the wrong type");

    public static readonly VerifierRule StackEscape = new("PV021", "reference to a finished frame",
        "a reference or span into a method's own stack frame that outlives the frame points into memory the kernel reuses");

    public static readonly VerifierRule ReadOnlyWrite = new("PV022", "write to read-only memory",
        "writing through a read-only reference, to a readonly field outside its constructor or through an init accessor changes data the kernel or another driver treats as constant");

    public static readonly VerifierRule MethodPointer = new("PV023", "method pointer outside a delegate",
        "ldftn and ldvirtftn are safe only when they feed a delegate constructor whose signature matches the method");

    public static readonly VerifierRule UncheckedIl = new("PV024", "unchecked IL forms",
        "tail calls, no./unaligned. prefixes, jmp, break, varargs and TypedReference skip checks the runtime otherwise makes");

    public static readonly VerifierRule UninitializedLocals = new("PV025", "uninitialized locals",
        "SkipLocalsInit, or a method body without zero-initialized locals, reads what the kernel left on the stack");

    public static readonly VerifierRule NativeImage = new("PV026", "not pure IL",
        "an assembly with native code (mixed-mode, or not IL-only) runs code that this verifier cannot read");

    public static readonly VerifierRule ForeignAssembly = new("PV027", "assembly outside the driver contract",
        "a driver may reference Palisade.Api, the .NET base library and the assemblies of its own package, nothing else the kernel process happens to contain, and may not stand in for a base-library assembly");

    public static readonly VerifierRule Unresolved = new("PV028", "unresolvable reference",
        "a reference the verifier cannot resolve cannot be checked");

    /// <summary>Every rule, in id order.</summary>
    public static IReadOnlyList<VerifierRule> All { get; } =
    [
        NotAllowed, Reflection, UnsafeAccessor, IgnoresAccessChecks, Pointers, FunctionPointers, StackAlloc, UnsafeClass,
        RawMemory, MarshalViews, PInvoke, CodeGeneration, AssemblyLoading, ProcessControl, FileSystem, Network, Threads,
        SharedState, ExplicitLayout, TypeSafety, StackEscape, ReadOnlyWrite, MethodPointer, UncheckedIl, UninitializedLocals,
        NativeImage, ForeignAssembly, Unresolved,
    ];
}
