namespace Palisade.Kernel.Guard;

/// <summary>
/// The type of a protected region, reported as parameter 4 of bug check 0x109. Windows numbers are reused where
/// the Windows meaning fits; Palisade-only kinds start at 0x200. docs/bugchecks.md holds the table.
/// </summary>
internal enum GuardRegionType : ulong
{
    /// <summary>A generic data region (Windows 0x0).</summary>
    GenericData = 0x0,

    /// <summary>The native code of a protected kernel method: stub, data cell or body (Windows 0x1).</summary>
    KernelFunction = 0x1,

    /// <summary>The active process list, cross-checked against an independent view (Windows 0x4).</summary>
    ProcessList = 0x4,

    /// <summary>The system call entry point (Windows 0x7, the MSR holding the syscall entry).</summary>
    SyscallEntry = 0x7,

    /// <summary>Object type procedures (Windows 0x8).</summary>
    ObjectType = 0x8,

    /// <summary>The system service table (Windows 0xA).</summary>
    SystemServiceTable = 0xA,

    /// <summary>A kernel notification callout table: process, thread, image, object, registry callbacks (Windows 0x18).</summary>
    NotificationCallout = 0x18,

    /// <summary>The loaded driver list (Windows 0x19, loaded module list).</summary>
    LoadedModuleList = 0x19,

    /// <summary>A driver object (Windows 0x1C).</summary>
    DriverObject = 0x1C,

    /// <summary>An executive callback object: filter manager frames, network filter engine tables (Windows 0x1D).</summary>
    CallbackObject = 0x1D,

    /// <summary>The guard's own contexts, schedule and configuration (Palisade).</summary>
    GuardState = 0x200,

    /// <summary>A guard context stopped, starved or late past its bound (Palisade).</summary>
    GuardHeartbeat = 0x201,

    /// <summary>The JIT's compile entry: the compileMethod slot of ICorJitCompiler (Palisade).</summary>
    JitCompileEntry = 0x202,

    /// <summary>The host's mediation wiring: the seccomp listener descriptor a supervisor serves and the mediators it asks (Palisade).</summary>
    HostMediation = 0x203,
}
