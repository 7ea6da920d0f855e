using System.Runtime.InteropServices;

namespace Palisade.Interop;

/// <summary>
/// posix_spawn and the signal calls the launcher needs. posix_spawn (vfork-style in glibc) is the safe way
/// for a multi-threaded .NET process to start a child with exactly chosen descriptors; fork() is not.
/// </summary>
internal static unsafe partial class Spawn
{
    private const string Lib = "libc";

    public const short POSIX_SPAWN_SETPGROUP = 0x02;
    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;
    public const int SIG_SETMASK = 2;
    public const int SIGPIPE = 13;

    /// <summary>Opaque storage large enough for glibc's posix_spawn_file_actions_t (80 bytes) and posix_spawnattr_t (336 bytes).</summary>
    public const int OpaqueSize = 512;

    /// <summary>sigset_t is 128 bytes in glibc.</summary>
    public const int SigSetSize = 128;

    [LibraryImport(Lib, EntryPoint = "posix_spawn")]
    public static partial int PosixSpawn(int* pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addopen")]
    public static partial int FileActionsAddOpen(void* fileActions, int fd, byte* path, int flags, int mode);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addclosefrom_np")]
    public static partial int FileActionsAddCloseFrom(void* fileActions, int from);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_init")]
    public static partial int FileActionsInit(void* fileActions);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_adddup2")]
    public static partial int FileActionsAddDup2(void* fileActions, int fd, int newFd);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_destroy")]
    public static partial int FileActionsDestroy(void* fileActions);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_init")]
    public static partial int AttrInit(void* attributes);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setflags")]
    public static partial int AttrSetFlags(void* attributes, short flags);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setsigmask")]
    public static partial int AttrSetSigMask(void* attributes, void* set);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setsigdefault")]
    public static partial int AttrSetSigDefault(void* attributes, void* set);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setpgroup")]
    public static partial int AttrSetProcessGroup(void* attributes, int processGroup);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_destroy")]
    public static partial int AttrDestroy(void* attributes);

    [LibraryImport(Lib, EntryPoint = "sigfillset")]
    public static partial int SigFillSet(void* set);

    [LibraryImport(Lib, EntryPoint = "sigdelset")]
    public static partial int SigDelSet(void* set, int signal);

    [LibraryImport(Lib, EntryPoint = "pthread_sigmask")]
    public static partial int PthreadSigMask(int how, void* set, void* old);

    public const int SIG_BLOCK = 0;
    public const int SIGCONT = 18;
    public const int SIGSTOP = 19;
    public const int SIGTTOU = 22;

    [LibraryImport(Lib, EntryPoint = "sigemptyset")]
    public static partial int SigEmptySet(void* set);

    [LibraryImport(Lib, EntryPoint = "sigaddset")]
    public static partial int SigAddSet(void* set, int signal);

    [LibraryImport(Lib, EntryPoint = "tcgetpgrp", SetLastError = true)]
    public static partial int TcGetProcessGroup(int fd);

    [LibraryImport(Lib, EntryPoint = "tcsetpgrp", SetLastError = true)]
    public static partial int TcSetProcessGroup(int fd, int processGroup);

    [LibraryImport(Lib, EntryPoint = "getpgrp")]
    public static partial int GetProcessGroup();

    [LibraryImport(Lib, EntryPoint = "killpg", SetLastError = true)]
    public static partial int KillProcessGroup(int processGroup, int signal);

    [LibraryImport(Lib, EntryPoint = "signal", SetLastError = true)]
    public static partial nint Signal(int signal, nint handler);

    /// <summary>
    /// Starts <paramref name="argv"/>[0] as a helper of Palisade's own (the launcher, a driver host): descriptor
    /// <paramref name="control"/> becomes <paramref name="at"/> in the child, every signal has its default disposition and
    /// none is blocked, and the child gets a process group of its own (no group signal sent from the child's group reaches
    /// the caller's). With <paramref name="sealOff"/>, standard input and output are /dev/null and every descriptor above
    /// <paramref name="at"/> is closed, so that nothing else of the caller's crosses. Returns the pid, or -errno.
    /// </summary>
    public static int SpawnHelper(IReadOnlyList<string> argv, byte** environment, int control, int at, bool sealOff)
    {
        byte* actions = stackalloc byte[OpaqueSize];
        byte* attributes = stackalloc byte[OpaqueSize];
        byte* all = stackalloc byte[SigSetSize];
        byte* none = stackalloc byte[SigSetSize];
        new Span<byte>(none, SigSetSize).Clear();
        _ = SigFillSet(all);
        _ = SigDelSet(all, Libc.SIGKILL);
        _ = SigDelSet(all, 19 /* SIGSTOP */);
        byte* devNull = stackalloc byte[10];
        "/dev/null\0"u8.CopyTo(new Span<byte>(devNull, 10));

        // dup2 onto itself would keep O_CLOEXEC; move the descriptor first in that unlikely case.
        int source = control == at ? Libc.Fcntl(control, Libc.F_DUPFD_CLOEXEC, 10) : control;
        byte** args = AllocStrings(argv);
        try
        {
            _ = FileActionsInit(actions);
            _ = FileActionsAddDup2(actions, source, at);
            if (sealOff)
            {
                _ = FileActionsAddOpen(actions, 0, devNull, 0 /* O_RDONLY */, 0);
                _ = FileActionsAddOpen(actions, 1, devNull, 1 /* O_WRONLY */, 0);
                _ = FileActionsAddCloseFrom(actions, at + 1);
            }

            _ = AttrInit(attributes);
            _ = AttrSetFlags(attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
            _ = AttrSetProcessGroup(attributes, 0);
            _ = AttrSetSigDefault(attributes, all);
            _ = AttrSetSigMask(attributes, none);
            int pid;
            int error = PosixSpawn(&pid, args[0], actions, attributes, args, environment);
            return error != 0 ? -error : pid;
        }
        finally
        {
            _ = FileActionsDestroy(actions);
            _ = AttrDestroy(attributes);
            FreeStrings(args);
            if (source != control)
            {
                Libc.CloseOwned(source);
            }
        }
    }

    /// <summary>The process environment (libc's environ), passed through to guests untouched.</summary>
    public static byte** Environ
    {
        get
        {
            nint library = NativeLibrary.Load("libc.so.6");
            return *(byte***)NativeLibrary.GetExport(library, "environ");
        }
    }

    /// <summary>A NULL-terminated array of NUL-terminated UTF-8 strings in native memory; free with <see cref="FreeStrings"/>.</summary>
    public static byte** AllocStrings(IReadOnlyList<string> values)
    {
        var array = (byte**)NativeMemory.AllocZeroed((nuint)(values.Count + 1), (nuint)sizeof(byte*));
        for (int i = 0; i < values.Count; i++)
        {
            array[i] = (byte*)Marshal.StringToCoTaskMemUTF8(values[i]);
        }

        return array;
    }

    /// <summary>Frees what <see cref="AllocStrings"/> allocated.</summary>
    public static void FreeStrings(byte** array)
    {
        for (int i = 0; array[i] != null; i++)
        {
            Marshal.FreeCoTaskMem((nint)array[i]);
        }

        NativeMemory.Free(array);
    }
}
