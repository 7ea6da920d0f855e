using System;
using System.Collections.Generic;

namespace Palisade.Api;

/// <summary>
/// Process, thread and image-load notifications, in the manner of PsSetCreateProcessNotifyRoutineEx,
/// PsSetCreateThreadNotifyRoutine and PsSetLoadImageNotifyRoutine.
/// </summary>
/// <remarks>
/// <para><b>Limits.</b> At most 64 callbacks of each kind (process create, process exit, thread create, thread exit,
/// image load, process fork, exec result) are registered at once, across all drivers; the 65th registration returns
/// <see cref="Status.TooManyRegistrations"/>.</para>
/// <para><b>Ordering.</b> Callbacks of one kind are called in the order they were registered.</para>
/// <para><b>Threading.</b> Callbacks run on a kernel thread while the guest thread that caused the event waits; they run
/// concurrently for different guests, and a callback that takes long delays only the guest thread whose operation it
/// decides. A process-create callback that needs long (a hash of a large image, a question to a server) holds the
/// creation instead: <see cref="PendCreate"/>, return <see cref="Status.Pending"/>, and complete it later with
/// <see cref="CompletePendedCreate"/>.</para>
/// <para><b>Containment.</b> A callback that throws, that overruns its 5-second deadline (its own time, as
/// <see cref="CallbackOptions"/> defines it), or (process create) that returns <see cref="Status.Pending"/> without a
/// pend, or (image load) that returns <see cref="Status.Pending"/> at all, faults: the registration's timeout verdict
/// applies (<see cref="TimeoutVerdict.Allow"/> by default; <see cref="TimeoutVerdict.Deny"/> denies the creation or the
/// image load with <see cref="Status.AccessDenied"/>), a <c>driver-fault</c> event names the driver, the registration and the operation,
/// and the driver's fault callbacks are told. The registration is disabled only as its
/// <see cref="CallbackOptions.DisableAfterFaults"/> says.</para>
/// </remarks>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "application control", "antivirus", "self-protection", "EDR telemetry")]
public interface IProcessCallbacks
{
    /// <summary>
    /// Registers a callback called before a program image starts in a process (an execve, or the first program of a
    /// <c>palisade run</c>). The callback may deny the creation.
    /// </summary>
    /// <param name="callback">The callback. Must not be null.</param>
    /// <param name="cookie">On success, names the registration for <see cref="Unregister"/>; otherwise default.</param>
    /// <returns>
    /// <see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> when <paramref name="callback"/> is null;
    /// <see cref="Status.TooManyRegistrations"/> when 64 process-create callbacks are registered.
    /// </returns>
    Status RegisterProcessCreate(ProcessCreateCallback callback, out CallbackCookie cookie);

    /// <summary>Registers a callback called after a process has exited (for any reason, including signals).</summary>
    /// <param name="callback">The callback. Must not be null.</param>
    /// <param name="cookie">On success, names the registration; otherwise default.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidParameter"/> or <see cref="Status.TooManyRegistrations"/>.</returns>
    Status RegisterProcessExit(ProcessExitCallback callback, out CallbackCookie cookie);

    /// <summary>Registers a callback called when a thread is created in a guest process (a clone with CLONE_THREAD), or a process is forked (its first thread).</summary>
    /// <param name="callback">The callback. Must not be null.</param>
    /// <param name="cookie">On success, names the registration; otherwise default.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidParameter"/> or <see cref="Status.TooManyRegistrations"/>.</returns>
    Status RegisterThreadCreate(ThreadCallback callback, out CallbackCookie cookie);

    /// <summary>Registers a callback called when a guest thread exits.</summary>
    /// <param name="callback">The callback. Must not be null.</param>
    /// <param name="cookie">On success, names the registration; otherwise default.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidParameter"/> or <see cref="Status.TooManyRegistrations"/>.</returns>
    Status RegisterThreadExit(ThreadCallback callback, out CallbackCookie cookie);

    /// <summary>
    /// Registers a callback called before each image a process is about to run code from is loaded (PsSetLoadImageNotifyRoutine,
    /// with a verdict): at exec, after the process-create callbacks allowed it, the file named to exec, the interpreter of a
    /// <c>#!</c> script (each, when interpreters nest) and the ELF interpreter its program headers name; later, every file a
    /// process maps executable (shared libraries, <c>dlopen</c>, a program started through the dynamic loader, a mapping
    /// made executable with <c>mprotect</c>). See <see cref="ImageLoadKind"/>. The callback may deny the load.
    /// </summary>
    /// <param name="callback">The callback. Must not be null.</param>
    /// <param name="cookie">On success, names the registration; otherwise default.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidParameter"/> or <see cref="Status.TooManyRegistrations"/>.</returns>
    Status RegisterImageLoad(ImageLoadCallback callback, out CallbackCookie cookie);

    /// <summary>
    /// Registers a callback told of every new process (a fork, vfork or clone without <c>CLONE_THREAD</c>, whether or not
    /// it ever execs), with its real parent: the process that forked it, by pid and start key. A fork cannot be refused:
    /// Linux names the child only once it exists, so the notification is a post notification (a driver that must stop the
    /// child ends it with <see cref="TerminateProcess"/>, by the start key it is given here).
    /// </summary>
    /// <remarks>
    /// <para><b>When.</b> Before the first system call of the child that the kernel mediates is served: a child that execs
    /// is reported before its exec's process-create notification, one that exits before its exit (and its process-exit
    /// notification). With this callback registered the kernel mediates <c>exit</c> and <c>exit_group</c>, so every child
    /// that ends by exiting or by exec is reported; a child that a signal kills before any mediated system call, or one that
    /// runs without ever making one, is not (see docs/security.md).</para>
    /// <para><b>Parent.</b> The parent is the process Linux names as the child's parent at the notification
    /// (<c>CLONE_PARENT</c> makes that the forker's parent, as Linux says). If the forker ended before the child's first
    /// mediated call, Linux has already given the child to a reaper, and the notification names the reaper: the kernel
    /// does not see the fork itself, only its child.</para>
    /// <para><b>Ordering.</b> Callbacks are called in the order they were registered, on the child's thread; they cannot
    /// hold the child (there is no verdict).</para>
    /// </remarks>
    /// <param name="callback">The callback. Must not be null.</param>
    /// <param name="cookie">On success, names the registration; otherwise default.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidParameter"/> or <see cref="Status.TooManyRegistrations"/>.</returns>
    Status RegisterProcessFork(ProcessForkCallback callback, out CallbackCookie cookie);

    /// <summary>
    /// Registers a callback told how each exec ended: <see cref="ExecResultInfo.Succeeded"/> when Linux replaced the
    /// process's program, or the errno the guest's <c>execve</c>/<c>execveat</c> returned. Every exec a guest asks for gets
    /// one result, keyed by the process's start key: one that the kernel failed itself (a path that names nothing: the
    /// process-create callbacks never ran), one a process-create or image-load callback denied, and one that Linux
    /// performed or failed after the callbacks allowed it.
    /// </summary>
    /// <remarks>
    /// <para><b>When.</b> A failure the kernel answers is reported before the guest gets its errno. For an exec the
    /// callbacks allowed, the kernel learns what Linux did at the process's next mediated system call (with this callback
    /// registered, at the latest its <c>exit</c> or <c>exit_group</c>): the program changed (success), or the thread that
    /// called exec is back with the old program (failure). The kernel lets Linux perform the exec and does not see its
    /// return value, so such a failure (<c>ENOEXEC</c> for an unknown format, <c>E2BIG</c>, <c>ETXTBSY</c>...) is reported
    /// with <see cref="ExecResultInfo.Errno"/> 0: failed, errno unknown. A process that ends (a signal) before its next
    /// mediated call gets no result. An exec of the very file the process already runs that Linux fails is reported as a
    /// success (the program file did not change).</para>
    /// </remarks>
    /// <param name="callback">The callback. Must not be null.</param>
    /// <param name="cookie">On success, names the registration; otherwise default.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidParameter"/> or <see cref="Status.TooManyRegistrations"/>.</returns>
    Status RegisterExecResult(ExecResultCallback callback, out CallbackCookie cookie);

    /// <summary>
    /// Holds the process creation whose process-create callback of this driver runs on the calling thread, to decide it
    /// later: call it inside the callback, then return <see cref="Status.Pending"/>; complete it from any thread with
    /// <see cref="CompletePendedCreate"/>. The exec waits, and only the exec: other guests and the process's other threads
    /// go on. A completion that comes before the callback returned is kept.
    /// </summary>
    /// <param name="info">The creation the callback received (its <c>in</c> parameter, passed on).</param>
    /// <param name="cancelCallback">Told if the kernel ends the hold without a completion (timeout, the guest gone, the
    /// registration removed); null for no notification.</param>
    /// <param name="pended">On success, the completion handle; otherwise null.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidDeviceState"/> when called outside a process-create
    /// callback of this driver, for another creation than the one it received, or a second time in one call;
    /// <see cref="Status.NotSupported"/> when the registration's <see cref="CallbackOptions.MaximumHoldTime"/> is zero or the
    /// creation is not a guest's; <see cref="Status.InsufficientResources"/> when 128 operations are held already.</returns>
    Status PendCreate(in ProcessCreateInfo info, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended);

    /// <summary>
    /// Completes a held process creation with the verdict the callback would have returned: <see cref="Status.Success"/>
    /// allows it, an error status denies it (the guest's exec fails with the status's errno). The remaining
    /// process-create callbacks then run, then the image-load callbacks, as after a synchronous return. From any thread.
    /// </summary>
    /// <param name="operation">The handle <see cref="PendCreate"/> returned.</param>
    /// <param name="verdict">The verdict; any status but <see cref="Status.Pending"/>.</param>
    /// <returns><see cref="Status.Success"/> when the verdict was taken; <see cref="Status.InvalidParameter"/> for a null
    /// handle, a handle of another kind or <see cref="Status.Pending"/> (the hold stays); <see cref="Status.InvalidHandle"/>
    /// when the handle is not one of this driver's; <see cref="Status.AlreadyCompleted"/>; <see cref="Status.IoTimeout"/>;
    /// <see cref="Status.Cancelled"/>; <see cref="Status.InvalidDeviceState"/> when the callback withdrew it. Never throws.</returns>
    Status CompletePendedCreate(IPendedOperation operation, Status verdict);

    /// <summary>
    /// Terminates a guest process (SIGKILL), named by its start key, through the process object the kernel holds (a
    /// pidfd opened when the kernel first saw the process), never by a pid that Linux may have given to another process
    /// since. The process ends as <c>kill -9</c> ends it; its process-exit notification follows.
    /// </summary>
    /// <param name="processStartKey">The process's <see cref="ProcessCreateInfo.ProcessStartKey"/> (or that of
    /// <see cref="ThreadInfo"/>, <see cref="ProcessExitInfo"/>).</param>
    /// <returns><see cref="Status.Success"/> when the signal was sent; <see cref="Status.InvalidParameter"/> for a key of 0
    /// or less; <see cref="Status.NotFound"/> when no live process has that key (it ended, or the key was never given);
    /// <see cref="Status.AccessDenied"/> for a process that is not a guest (one the kernel knows only as the target of a
    /// guest's access) or that Linux refused; <see cref="Status.NotSupported"/> when no host holds an object for the process
    /// (the kernel runs without a host, or the host watches too many processes); <see cref="Status.InvalidDeviceState"/>
    /// after the driver unloaded. Never throws.</returns>
    Status TerminateProcess(long processStartKey);

    /// <summary>Suspends a guest process (SIGSTOP: every thread stops), named by its start key, as
    /// <see cref="TerminateProcess"/> names it. Its parent may see it stopped, as after <c>kill -STOP</c>.</summary>
    /// <param name="processStartKey">The process's start key.</param>
    /// <returns>The statuses of <see cref="TerminateProcess"/>.</returns>
    Status SuspendProcess(long processStartKey);

    /// <summary>Resumes a process suspended (SIGCONT), named by its start key, as <see cref="TerminateProcess"/> names it.</summary>
    /// <param name="processStartKey">The process's start key.</param>
    /// <returns>The statuses of <see cref="TerminateProcess"/>.</returns>
    Status ResumeProcess(long processStartKey);

    /// <summary>Removes a registration made through this interface. After it returns, the callback is not running and is
    /// not called again.</summary>
    /// <remarks>Run-down, as ExWaitForRundownProtectionRelease: no call of the callback starts once the removal began, and
    /// the method returns only after every call that had started has returned. Called from inside one of its calls on the
    /// thread that runs it (a callback that removes its own registration), it waits for the calls on other threads only
    /// and does not deadlock: it returns <see cref="Status.Success"/>, and the calling callback then finishes normally
    /// (its verdict is used). Do not call it while holding a lock that the callback might take: it waits for them.</remarks>
    /// <param name="cookie">The cookie returned at registration.</param>
    /// <returns><see cref="Status.Success"/>, or <see cref="Status.InvalidHandle"/> when the cookie names no live registration of this driver.</returns>
    Status Unregister(CallbackCookie cookie);
}

/// <summary>Decides whether a program may start. Return <see cref="Status.Success"/> to allow, or an error status
/// (typically <see cref="Status.AccessDenied"/>, which the guest sees as <c>EACCES</c>) to deny.</summary>
/// <param name="info">The process being created. Valid only during the call.</param>
/// <returns>The verdict. The first error returned by any callback denies the creation; later callbacks still run
/// and see <see cref="ProcessCreateInfo.CreationStatus"/>. <see cref="Status.Pending"/> after a successful
/// <see cref="IProcessCallbacks.PendCreate"/> holds the creation.</returns>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "application control", "antivirus")]
public delegate Status ProcessCreateCallback(in ProcessCreateInfo info);

/// <summary>Observes a new process (a fork). See <see cref="IProcessCallbacks.RegisterProcessFork"/>.</summary>
/// <param name="info">The new process and its parent. Valid only during the call.</param>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "EDR telemetry", "self-protection")]
public delegate void ProcessForkCallback(in ProcessForkInfo info);

/// <summary>Observes how an exec ended. See <see cref="IProcessCallbacks.RegisterExecResult"/>.</summary>
/// <param name="info">The exec and its outcome. Valid only during the call.</param>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "EDR telemetry", "application control")]
public delegate void ExecResultCallback(in ExecResultInfo info);

/// <summary>Observes a process exit.</summary>
/// <param name="info">The process that exited.</param>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "EDR telemetry", "self-protection")]
public delegate void ProcessExitCallback(in ProcessExitInfo info);

/// <summary>Observes a thread creation or exit.</summary>
/// <param name="info">The thread.</param>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "EDR telemetry")]
public delegate void ThreadCallback(in ThreadInfo info);

/// <summary>
/// Decides whether an image may be loaded into a process. Return <see cref="Status.Success"/> to allow, or an error status
/// (typically <see cref="Status.AccessDenied"/>) to deny: the first error of any callback denies the load, later callbacks
/// still run. A denied exec image (<see cref="ImageLoadKind.Executable"/>, <see cref="ImageLoadKind.Script"/>,
/// <see cref="ImageLoadKind.ScriptInterpreter"/>, <see cref="ImageLoadKind.ElfInterpreter"/>) fails the guest's exec with the
/// status's errno (<c>EACCES</c>); a denied <see cref="ImageLoadKind.Mapping"/> fails the guest's <c>mmap</c> or
/// <c>mprotect</c> with <c>EACCES</c> before anything is mapped (a dynamic loader then reports the library as not
/// loadable: <c>dlopen</c> returns NULL and <c>dlerror</c> says "Permission denied").
/// </summary>
/// <param name="info">The image. Valid only during the call.</param>
/// <returns>The verdict. A callback that throws or overruns its deadline takes its registration's timeout verdict.</returns>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "antivirus", "application control", "EDR telemetry")]
public delegate Status ImageLoadCallback(in ImageLoadInfo info);

/// <summary>What a process-create callback sees.</summary>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "application control", "antivirus")]
public readonly struct ProcessCreateInfo
{
    /// <summary>The process id of the process that will run the image (for an exec, the process that calls it).</summary>
    public int ProcessId { get; init; }

    /// <summary>
    /// The process's identity for the kernel's life, in the manner of PsGetProcessStartKey: a 64-bit number (1, 2, 3…)
    /// that no other process gets while this kernel runs, even when Linux reuses the pid. A process keeps it from its first
    /// notification (fork, or its first exec) to its exit, through every exec. 0 when the kernel does not know the process.
    /// </summary>
    public long ProcessStartKey { get; init; }

    /// <summary>The parent process id (the parent Linux names for the process when it asks for the exec).</summary>
    public int ParentProcessId { get; init; }

    /// <summary>The parent's start key (see <see cref="ProcessStartKey"/>); 0 when the kernel does not know the parent (the
    /// program <c>palisade run</c> started, or a parent that is no guest).</summary>
    public long ParentProcessStartKey { get; init; }

    /// <summary>The process id of the creator: the process that asked for the program to start.</summary>
    public int CreatorProcessId { get; init; }

    /// <summary>The thread id of the creator.</summary>
    public int CreatorThreadId { get; init; }

    /// <summary>The absolute path of the image file, with symbolic links resolved.</summary>
    public string ImagePath { get; init; }

    /// <summary>
    /// The command line, derived from <see cref="Arguments"/>: the arguments joined with single spaces (so an argument with
    /// a space, or an empty one, cannot be told apart here); the image path when there are no arguments. Kept for
    /// compatibility: use <see cref="Arguments"/>.
    /// </summary>
    public string CommandLine { get; init; }

    /// <summary>
    /// The new program's arguments (its <c>argv</c>, <c>argv[0]</c> first), one string each, as the exec call passed them:
    /// read once from the guest's memory when it asks for the exec. Bytes that are valid UTF-8 are kept exactly (spaces,
    /// empty strings, any character); a byte sequence that is not UTF-8 becomes U+FFFD. Empty for an exec with a null or
    /// empty <c>argv</c>. For an exec whose arguments and environment together exceed Linux's limit (which Linux then fails
    /// with <c>E2BIG</c>), the strings that fit in that limit. Never null.
    /// </summary>
    /// <remarks>Another thread of the guest can change the strings in memory after the kernel read them and before Linux
    /// copies them; the program then gets the changed strings. What the callback sees is what the caller passed at the
    /// call.</remarks>
    public IReadOnlyList<string> Arguments { get; init; }

    /// <summary>
    /// The new program's environment (its <c>envp</c>), one string each as passed (normally <c>NAME=value</c>), read and
    /// decoded as <see cref="Arguments"/> are. Empty for a null or empty <c>envp</c>. Never null.
    /// </summary>
    public IReadOnlyList<string> EnvironmentVariables { get; init; }

    /// <summary>
    /// The working directory of the thread that asks for the exec, as Linux resolves it for that thread (its
    /// <c>/proc/TID/cwd</c>, as the kernel's own view of the file system names it; a removed directory ends in
    /// <c> (deleted)</c>); null when Linux would not tell (the thread went away).
    /// </summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>The real user id of the creator (<see cref="Credentials"/><c>.RealUserId</c> when the credentials are known).</summary>
    public int UserId { get; init; }

    /// <summary>
    /// The creator's credentials when it asks for the exec, read from Linux at that moment (so a <c>setuid</c> made
    /// before is seen); null when the kernel could not read them (the process went away). A set-user-ID image or file
    /// capabilities change them when the exec completes, after this notification.
    /// </summary>
    public ProcessCredentials? Credentials { get; init; }

    /// <summary>The identity of the image file that will actually be executed.</summary>
    public FileIdentity File { get; init; }

    /// <summary>The verdict so far: <see cref="Status.Success"/>, or the error returned by an earlier callback.</summary>
    public Status CreationStatus { get; init; }

    /// <summary>
    /// When the creation would time out if this callback held it, on the clock of <see cref="Environment.TickCount64"/>
    /// (milliseconds); 0 when this registration cannot hold it (see <see cref="FileOperation.HoldDeadline"/>).
    /// </summary>
    public long HoldDeadline { get; init; }
}

/// <summary>What a process-exit callback sees.</summary>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "EDR telemetry")]
public readonly struct ProcessExitInfo
{
    /// <summary>The process id.</summary>
    public int ProcessId { get; init; }

    /// <summary>The process's start key, as <see cref="ProcessCreateInfo.ProcessStartKey"/> gave it.</summary>
    public long ProcessStartKey { get; init; }

    /// <summary>The exit code (0–255) when <see cref="Signal"/> is 0.</summary>
    public int ExitCode { get; init; }

    /// <summary>The signal that ended the process, or 0 when it exited.</summary>
    public int Signal { get; init; }
}

/// <summary>What a thread callback sees.</summary>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "EDR telemetry")]
public readonly struct ThreadInfo
{
    /// <summary>The process the thread belongs to.</summary>
    public int ProcessId { get; init; }

    /// <summary>That process's start key (see <see cref="ProcessCreateInfo.ProcessStartKey"/>); 0 when the kernel does
    /// not know the process.</summary>
    public long ProcessStartKey { get; init; }

    /// <summary>The thread id.</summary>
    public int ThreadId { get; init; }

    /// <summary>The thread that created it (for a create), or 0 when unknown.</summary>
    public int CreatorThreadId { get; init; }
}

/// <summary>
/// What an image-load callback sees: one file a process is about to run code from, described as Linux resolved it (the
/// file behind the descriptor or name the kernel loads, never the text a guest wrote).
/// </summary>
/// <remarks>
/// <para>The image loads of one exec come in the order Linux loads them: the file named to exec
/// (<see cref="ImageLoadKind.Executable"/>, or <see cref="ImageLoadKind.Script"/> when it starts with <c>#!</c>), then each
/// <c>#!</c> interpreter in turn (<see cref="ImageLoadKind.ScriptInterpreter"/>, up to Linux's depth of 5), then the ELF
/// interpreter of the program that finally runs (<see cref="ImageLoadKind.ElfInterpreter"/>), all before the exec proceeds.
/// Every later executable file mapping is one <see cref="ImageLoadKind.Mapping"/> load. Anonymous executable memory (a JIT)
/// is no image and is not reported. docs/security.md lists what this does not cover.</para>
/// </remarks>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "antivirus", "application control", "EDR telemetry")]
public readonly struct ImageLoadInfo
{
    /// <summary>The process the image is loaded into.</summary>
    public int ProcessId { get; init; }

    /// <summary>That process's start key (see <see cref="ProcessCreateInfo.ProcessStartKey"/>): for the images of an exec,
    /// the key its process-create notification carried; 0 when the kernel does not know the process.</summary>
    public long ProcessStartKey { get; init; }

    /// <summary>The absolute path of the image as Linux resolved it (no <c>..</c>, <c>//</c> or symbolic links); for a file
    /// with no name (a memfd, a deleted file), what Linux reports for it, such as <c>/memfd:name (deleted)</c>.</summary>
    public string ImagePath { get; init; }

    /// <summary>The identity of the image file: the very file Linux loads.</summary>
    public FileIdentity File { get; init; }

    /// <summary>How the image is loaded.</summary>
    public ImageLoadKind Kind { get; init; }

    /// <summary>What kind of object the image is (a regular file, or for a mapping possibly a device).</summary>
    public FileObjectType FileType { get; init; }
}

/// <summary>What a fork callback sees: a new process and its parent.</summary>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "EDR telemetry", "self-protection")]
public readonly struct ProcessForkInfo
{
    /// <summary>The new process's id.</summary>
    public int ProcessId { get; init; }

    /// <summary>The new process's start key (see <see cref="ProcessCreateInfo.ProcessStartKey"/>); it keeps it through its
    /// execs, and it names it to <see cref="IProcessCallbacks.TerminateProcess"/>.</summary>
    public long ProcessStartKey { get; init; }

    /// <summary>The parent's process id, as Linux names it at the notification (see
    /// <see cref="IProcessCallbacks.RegisterProcessFork"/>).</summary>
    public int ParentProcessId { get; init; }

    /// <summary>The parent's start key; 0 when the kernel does not know the parent (it is no guest: the parent of the
    /// program <c>palisade run</c> started).</summary>
    public long ParentProcessStartKey { get; init; }

    /// <summary>The program the new process runs (a fork runs its parent's): the canonical path of its parent's image as
    /// the kernel knew it; when the kernel did not know the parent, the image Linux reports for the new process (for the
    /// program <c>palisade run</c> starts, the launcher's, before its first exec); empty when neither is known.</summary>
    public string ImagePath { get; init; }

    /// <summary>The identity of the parent's image file; default when the kernel did not know the parent.</summary>
    public FileIdentity File { get; init; }
}

/// <summary>What an exec-result callback sees: one exec and how it ended.</summary>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "EDR telemetry", "application control")]
public readonly struct ExecResultInfo
{
    /// <summary>The process that called exec.</summary>
    public int ProcessId { get; init; }

    /// <summary>Its start key: the one its process-create notification for this exec carried (an exec keeps it, whatever
    /// the outcome); 0 when the kernel does not know the process.</summary>
    public long ProcessStartKey { get; init; }

    /// <summary>The thread that called exec.</summary>
    public int ThreadId { get; init; }

    /// <summary>The image the exec named: the canonical path the process-create notification carried, or, for an exec the
    /// kernel failed before resolving it, the path as the guest named it.</summary>
    public string ImagePath { get; init; }

    /// <summary>The identity of that image; default when the exec failed before it was resolved.</summary>
    public FileIdentity File { get; init; }

    /// <summary>True when Linux replaced the process's program (the exec returned nothing: the new program runs).</summary>
    public bool Succeeded { get; init; }

    /// <summary>
    /// For a failed exec, the errno the guest's call returned (<c>ENOENT</c> 2, <c>EACCES</c> 13 for a denial...), when the
    /// kernel knows it; 0 for a success, and for a failure of Linux after the callbacks allowed the exec, whose errno the
    /// kernel does not see (see <see cref="IProcessCallbacks.RegisterExecResult"/>).
    /// </summary>
    public int Errno { get; init; }
}

/// <summary>How an image comes to run in a process (<see cref="ImageLoadInfo.Kind"/>).</summary>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "antivirus", "application control", "EDR telemetry")]
public enum ImageLoadKind
{
    /// <summary>The program file named to <c>execve</c>/<c>execveat</c> (a memfd through <c>AT_EMPTY_PATH</c> included).</summary>
    Executable,

    /// <summary>The file named to exec is a <c>#!</c> script: its interpreter runs and reads it.</summary>
    Script,

    /// <summary>The interpreter a <c>#!</c> line names (itself a script when interpreters nest).</summary>
    ScriptInterpreter,

    /// <summary>The ELF interpreter (dynamic loader) the program's <c>PT_INTERP</c> header names, mapped by Linux at exec.</summary>
    ElfInterpreter,

    /// <summary>A file mapped executable by the process: a shared library, a <c>dlopen</c>, a program started through the
    /// dynamic loader (<c>ld-linux-x86-64.so.2 /path/program</c>), an <c>mprotect</c> that makes a file mapping executable.</summary>
    Mapping,
}

/// <summary>
/// A process's credentials as Linux holds them (its <c>/proc/PID/status</c>): real, effective, saved and file-system
/// user and group ids, supplementary groups and capability sets. Immutable: a snapshot at one moment.
/// </summary>
[ApiInfo(ApiArea.Processes, "1.0", ApiState.Draft, "application control", "EDR telemetry")]
public sealed class ProcessCredentials
{
    /// <summary>The real user id (who started it).</summary>
    public int RealUserId { get; init; }

    /// <summary>The effective user id (whose permissions it has).</summary>
    public int EffectiveUserId { get; init; }

    /// <summary>The saved set-user-ID.</summary>
    public int SavedUserId { get; init; }

    /// <summary>The file-system user id (the one Linux checks file access with).</summary>
    public int FileSystemUserId { get; init; }

    /// <summary>The real group id.</summary>
    public int RealGroupId { get; init; }

    /// <summary>The effective group id.</summary>
    public int EffectiveGroupId { get; init; }

    /// <summary>The saved set-group-ID.</summary>
    public int SavedGroupId { get; init; }

    /// <summary>The file-system group id.</summary>
    public int FileSystemGroupId { get; init; }

    /// <summary>The supplementary groups, in the order Linux lists them; empty when there are none.</summary>
    public IReadOnlyList<int> SupplementaryGroups { get; init; } = [];

    /// <summary>The effective capability set, one bit per capability (bit 0 is CAP_CHOWN, bit 21 CAP_SYS_ADMIN…),
    /// as seen from the process's own user namespace.</summary>
    public ulong EffectiveCapabilities { get; init; }

    /// <summary>The permitted capability set.</summary>
    public ulong PermittedCapabilities { get; init; }

    /// <summary>The inheritable capability set.</summary>
    public ulong InheritableCapabilities { get; init; }

    /// <summary>The ambient capability set.</summary>
    public ulong AmbientCapabilities { get; init; }

    /// <summary>The capability bounding set.</summary>
    public ulong BoundingCapabilities { get; init; }
}
