using System;
using System.Collections.Generic;
using System.IO;

namespace Palisade.Api;

/// <summary>
/// The filter manager: file system minifilters, in the manner of FltRegisterFilter. A minifilter registers at an
/// altitude with pre and post callbacks per operation; the kernel calls them for every file operation a guest makes.
/// </summary>
/// <remarks>
/// <para><b>Ordering.</b> Pre callbacks run from the highest altitude down; post callbacks run from the lowest up,
/// and only for filters whose pre callback returned <see cref="PreOperationStatus.SuccessWithCallback"/> (or that
/// registered a post callback without a pre callback).</para>
/// <para><b>Verdicts.</b> A pre callback returns <see cref="PreOperationStatus.SuccessWithCallback"/> or
/// <see cref="PreOperationStatus.SuccessNoCallback"/> to pass the operation down, or
/// <see cref="PreOperationStatus.Complete"/> to finish it at once with <see cref="FileOperation.Status"/> (an error
/// denies it: <see cref="Status.AccessDenied"/> becomes <c>EACCES</c>; <see cref="Status.Success"/> pretends it
/// succeeded without doing it, which is allowed for every operation except create). Filters below a completing
/// filter, and the file system, are not called. A create's post callback may still cancel the open by setting
/// <see cref="FileOperation.Status"/> to an error: the kernel closes the file it opened and fails the guest's open.</para>
/// <para><b>No filter undoes another.</b> Each callback receives its own copy of the operation. Only its verdict is read
/// back: <see cref="FileOperation.Status"/> (with <see cref="PreOperationStatus.Complete"/>, or as a post-create cancel)
/// and <see cref="FileOperation.CompletionContext"/>. A change to any other member (path, access, disposition, flags,
/// file) is seen by no other filter and not performed: filters below and the file system always see the operation the
/// guest asked for, which is the operation performed (there is no FltSetCallbackDataDirty; a filter that wants another
/// operation denies this one). In post callbacks an error is final: once the file system failed the operation, or a
/// filter below cancelled it, a filter above cannot set any other status (the attempt is ignored and reported as a
/// <see cref="RegistrationFaultKind.InvalidVerdict"/> fault). A filter above may only turn a create's success into an
/// error (a cancel, like FltCancelFileOpen); other changes of a non-create's outcome have no effect.</para>
/// <para><b>Operations.</b> <see cref="FileOperationKind.Create"/> (open, openat, openat2, creat),
/// <see cref="FileOperationKind.Cleanup"/> (the release of an open file description a guest opened for writing: its last
/// close, or the exit of its last holder — only reported to filters that register for it; see the member), <see cref="FileOperationKind.Rename"/>, <see cref="FileOperationKind.Delete"/>
/// (unlink, rmdir), <see cref="FileOperationKind.SetInformation"/> (truncate, chmod, chown), and, when registered,
/// <see cref="FileOperationKind.Read"/> and <see cref="FileOperationKind.Write"/> (opt-in: they make every read or
/// write of the files a guest opens through the filter manager go to the supervisor, which is slow).</para>
/// <para><b>Own I/O.</b> A filter opens, renames, deletes and changes files through
/// <see cref="OpenFile(CallbackCookie, string, FileAccess, out Stream?, out FileIdentity)"/>,
/// <see cref="RenameFile(CallbackCookie, string, string, FileIdentity)"/>, <see cref="DeleteFile(CallbackCookie, string, FileIdentity)"/>
/// (which act only on the file the filter decided on) and <see cref="SetFileInformation"/>, naming itself with its cookie: that I/O starts below
/// the filter, so neither the filter itself nor any filter above it sees it (FltCreateFile, FltSetInformationFile). A
/// driver's I/O on no filter's behalf (reading its configuration at load) passes <c>default(CallbackCookie)</c>: it
/// starts above every minifilter, as a program's would. Drivers that run inside the kernel process do all their file
/// I/O this way; the driver verifier refuses System.IO's file-system types.</para>
/// <para><b>Limits.</b> At most 64 minifilters; altitudes are unique among minifilters; names are unique, 1–64
/// characters.</para>
/// <para><b>Holding an operation.</b> A pre callback of create, rename, delete or set-information may hold the guest's
/// operation to decide it later (FLT_PREOP_PENDING): it calls <see cref="PendPreOperation"/> and returns
/// <see cref="PreOperationStatus.Pending"/>; the driver then completes it from any thread with
/// <see cref="CompletePendedPreOperation"/>, with any verdict a pre callback can return, and the operation continues from
/// that filter down exactly as after a synchronous return. While it is held only the guest thread that asked waits. A held
/// create can be read with <see cref="ReadFile(IPendedOperation, long, Span{byte}, out int)"/>: the kernel opens the file
/// the create names when it is pended, and the guest then receives that very file (see <see cref="PendPreOperation"/>).
/// The filter's <see cref="CallbackOptions"/> (<see cref="IDriverContext.SetCallbackOptions"/>) give its maximum hold time
/// and its verdict on timeout.</para>
/// <para><b>Containment.</b> A callback that throws, overruns its 5-second deadline or returns an undefined status faults:
/// the filter's timeout verdict applies (<see cref="TimeoutVerdict.Allow"/>: <see cref="PreOperationStatus.SuccessNoCallback"/>,
/// the operation proceeds; <see cref="TimeoutVerdict.Deny"/>: the operation fails with <see cref="Status.AccessDenied"/>),
/// a <c>driver-fault</c> event names the driver, the filter and the operation, and the driver's fault callbacks are told.
/// The filter is disabled only as its <see cref="CallbackOptions.DisableAfterFaults"/> says.</para>
/// </remarks>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning", "self-protection of files", "data loss prevention", "backup and audit")]
public interface IFilterManager
{
    /// <summary>Registers a minifilter and starts filtering at once (FltRegisterFilter followed by FltStartFiltering).</summary>
    /// <param name="registration">The filter's name, altitude and callbacks.</param>
    /// <param name="cookie">On success, names the filter for <see cref="UnregisterFilter"/>, the context calls and the own-I/O methods.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> when the registration is null, the name
    /// is empty or longer than 64 characters, an operation appears twice, an entry has neither callback or a flag
    /// <see cref="FileOperationFlags"/> does not define, or the verdict cache capacity is negative, 1 to 3, or above <see cref="FilterRegistration.MaxVerdictCacheCapacity"/>;
    /// <see cref="Status.InsufficientResources"/> when the verdict caches of all registered filters, this one included,
    /// would hold more than <see cref="FilterRegistration.MaxVerdictCacheCapacity"/> verdicts together;
    /// <see cref="Status.InvalidAltitude"/>; <see cref="Status.AltitudeCollision"/>; <see cref="Status.ObjectNameCollision"/>
    /// when the name is taken; <see cref="Status.TooManyRegistrations"/> at 64 filters.</returns>
    Status RegisterFilter(FilterRegistration registration, out CallbackCookie cookie);

    /// <summary>Removes a minifilter and all its file contexts. After it returns, none of its callbacks is running and
    /// none is called again. Operations already past the filter are not affected.</summary>
    /// <remarks>Run-down, as ExWaitForRundownProtectionRelease: no call of its pre or post callbacks starts once the removal began, and
    /// the method returns only after every call that had started has returned. Called from inside one of its callbacks on the
    /// thread that runs it (a callback that removes its own registration), it waits for the calls on other threads only
    /// and does not deadlock: it returns <see cref="Status.Success"/>, and the calling callback then finishes normally
    /// (its verdict is used). An operation whose pre callback ran before the removal gets no post callback from it. Do not call it while holding a lock that its callbacks might take: it waits for them.</remarks>
    /// <param name="cookie">The filter's cookie.</param>
    /// <returns><see cref="Status.Success"/>, or <see cref="Status.InvalidHandle"/>.</returns>
    Status UnregisterFilter(CallbackCookie cookie);

    /// <summary>
    /// Attaches a context of the filter's own to a file (FltSetFileContext), for example a cached scan verdict. Each
    /// filter has its own contexts; a context stays until it is replaced, deleted, the filter unregisters or the
    /// file's identity is reused after deletion.
    /// </summary>
    /// <param name="cookie">The filter's cookie.</param>
    /// <param name="file">The file's identity. Must not be <see cref="FileIdentity.IsNone"/>.</param>
    /// <param name="context">The context. Must not be null. Replaces any earlier context of this filter on this file.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.InvalidHandle"/> or <see cref="Status.InvalidParameter"/>.</returns>
    Status SetFileContext(CallbackCookie cookie, FileIdentity file, object context);

    /// <summary>Finds the context the filter attached to a file (FltGetFileContext).</summary>
    /// <param name="cookie">The filter's cookie.</param>
    /// <param name="file">The file's identity.</param>
    /// <param name="context">The context, or null when there is none.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.NotFound"/> when the file has no context of this filter,
    /// <see cref="Status.InvalidHandle"/>.</returns>
    Status GetFileContext(CallbackCookie cookie, FileIdentity file, out object? context);

    /// <summary>Removes the filter's context from a file (FltDeleteContext).</summary>
    /// <param name="cookie">The filter's cookie.</param>
    /// <param name="file">The file's identity.</param>
    /// <returns><see cref="Status.Success"/>, <see cref="Status.NotFound"/> or <see cref="Status.InvalidHandle"/>.</returns>
    Status DeleteFileContext(CallbackCookie cookie, FileIdentity file);

    /// <summary>
    /// Caches a verdict of the filter on a file as it is now (in the manner of Endpoint Security's result cache): the
    /// verdict is bound to the file's identity and to its change stamp, and <see cref="GetFileVerdict"/> returns it only
    /// while the file still has that stamp. Any change to the file — a write through a descriptor left open, an O_APPEND
    /// write, a truncate, a write by another process or from outside Palisade — moves the stamp, so the verdict is never
    /// served for content it was not made on, and the filter needs no invalidation of its own.
    /// </summary>
    /// <remarks>
    /// <para>Take <paramref name="file"/> and <paramref name="stamp"/> from the operation whose file was examined
    /// (<see cref="FileOperation.File"/> and <see cref="FileOperation.ChangeStamp"/>), both read before the content: the
    /// kernel takes the stamp before any filter can read the file, so a change made during the examination leaves the
    /// cached stamp behind and the next open examines the file again.</para>
    /// <para><b>Bound.</b> Each filter holds at most <see cref="FilterRegistration.VerdictCacheCapacity"/> verdicts
    /// (4,096 unless it registered another capacity), 4 per slot, the slot chosen by the identity's hash; storing a fifth
    /// verdict in a full slot evicts the one least recently stored or found. An evicted verdict is simply missing: the file is examined again. The verdicts go when the filter
    /// unregisters. Storing and finding allocate nothing (the table is allocated at the first store).</para>
    /// <para>Each filter has its own verdicts: no filter sees or replaces another's.</para>
    /// </remarks>
    /// <param name="cookie">The filter's cookie.</param>
    /// <param name="file">The file's identity. Must not be <see cref="FileIdentity.IsNone"/>.</param>
    /// <param name="stamp">The stamp the file had when it was examined. Must not be <see cref="FileChangeStamp.IsNone"/>.</param>
    /// <param name="verdict">The verdict, any object of the filter's (for example a shared marker per configuration, so
    /// that a change of configuration retires every earlier verdict). Must not be null. Replaces the filter's earlier
    /// verdict on this file.</param>
    /// <returns><see cref="Status.Success"/> once cached; <see cref="Status.InvalidParameter"/> for a file or stamp that is
    /// none, or a null verdict; <see cref="Status.InvalidHandle"/> for a cookie that names no filter of this driver.</returns>
    /// <remarks>The same as <see cref="SetFileVerdict(CallbackCookie, FileIdentity, FileChangeStamp, object, FileVerdictFlags)"/>
    /// with <see cref="FileVerdictFlags.None"/>: the kernel keeps calling the filter's callbacks.</remarks>
    Status SetFileVerdict(CallbackCookie cookie, FileIdentity file, FileChangeStamp stamp, object verdict);

    /// <summary>
    /// Caches a verdict of the filter on a file as it is now, as <see cref="SetFileVerdict(CallbackCookie, FileIdentity, FileChangeStamp, object)"/>
    /// does, and tells the kernel what the verdict lets it decide without calling the filter (in the manner of Endpoint
    /// Security's "allow, and cache it" and fanotify's ignore marks).
    /// </summary>
    /// <remarks>
    /// <para>With <see cref="FileVerdictFlags.SkipPostCreate"/>, while the verdict holds (the file keeps the identity and the
    /// change stamp it was cached under, and the verdict is neither replaced, evicted nor cleared), the kernel does not call
    /// the filter's post-create callback for an open of that file that asks for no write access: no
    /// <see cref="FileAccessRights.Write"/> or <see cref="FileAccessRights.Append"/> in <see cref="FileOperation.Access"/>,
    /// and a <see cref="FileOperation.Disposition"/> other than <see cref="CreateDisposition.Overwrite"/> and
    /// <see cref="CreateDisposition.OverwriteIf"/>. The open is skipped only once it has succeeded (the file system opened
    /// it and no filter below cancelled it), and only when the filter's pre-create, if it ran for this open, handed no
    /// <see cref="FileOperation.CompletionContext"/>: a context is always delivered to its post callback. The pre-create,
    /// when the filter registered one, is still called for every open; a filter that wants opens of such files to cost no
    /// callback at all registers no pre-create. The filter's other callbacks (cleanup, rename, ...) are not affected, and
    /// an exec's create (<see cref="FileAccessRights.Execute"/>) is an open that asks for no write access.</para>
    /// <para>So set the flag only on a verdict under which the post-create would do nothing for such an open; and since
    /// the kernel checks the file's identity and stamp but not what the verdict means, a filter whose own configuration
    /// changes (new signatures, new rules) calls <see cref="ClearFileVerdicts"/>, or it would not be asked again about
    /// files it judged under the old one. An open the kernel decides this way is recorded in the event stream with the
    /// verdict <c>cached</c>.</para>
    /// <para>Checking costs the filter's opens nothing while it holds no verdict with the flag; while it holds some, an open
    /// of the kind above looks its file up in the filter's cache (the lookup <see cref="GetFileVerdict"/> makes, which
    /// allocates nothing).</para>
    /// </remarks>
    /// <param name="cookie">The filter's cookie.</param>
    /// <param name="file">The file's identity. Must not be <see cref="FileIdentity.IsNone"/>.</param>
    /// <param name="stamp">The stamp the file had when it was examined. Must not be <see cref="FileChangeStamp.IsNone"/>.</param>
    /// <param name="verdict">The verdict. Must not be null. Replaces the filter's earlier verdict on this file, and its flags.</param>
    /// <param name="flags">What the kernel may decide on the verdict's strength: <see cref="FileVerdictFlags.None"/> or
    /// <see cref="FileVerdictFlags.SkipPostCreate"/>.</param>
    /// <returns><see cref="Status.Success"/> once cached; <see cref="Status.InvalidParameter"/> for a file or stamp that is
    /// none, a null verdict, or flags with a bit <see cref="FileVerdictFlags"/> does not define;
    /// <see cref="Status.InvalidHandle"/> for a cookie that names no filter of this driver.</returns>
    Status SetFileVerdict(CallbackCookie cookie, FileIdentity file, FileChangeStamp stamp, object verdict, FileVerdictFlags flags);

    /// <summary>
    /// Drops every verdict the filter cached (in the manner of Endpoint Security's es_clear_cache): what a filter calls when
    /// its own configuration changes (new signatures, new rules), so that every file is examined again under the new one.
    /// It matters most for verdicts cached with <see cref="FileVerdictFlags.SkipPostCreate"/>, on which the kernel decides
    /// opens without calling the filter.
    /// </summary>
    /// <remarks>Once it returns, no verdict cached before the call is found or skips a callback. A verdict the filter stores
    /// while the call runs, from another thread, may stay: a filter that examines files on several threads makes its new
    /// configuration visible before it clears, and does not store a verdict made under an older one after it clears (it can
    /// replace it with <see cref="SetFileVerdict(CallbackCookie, FileIdentity, FileChangeStamp, object)"/> and a verdict of its
    /// own that means "unknown"). The filter's file contexts are not touched.</remarks>
    /// <param name="cookie">The filter's cookie.</param>
    /// <returns><see cref="Status.Success"/>, also when the filter held no verdict; <see cref="Status.InvalidHandle"/> for a
    /// cookie that names no filter of this driver.</returns>
    Status ClearFileVerdicts(CallbackCookie cookie);

    /// <summary>
    /// Finds the filter's verdict on a file, only when it was cached (<see cref="SetFileVerdict(CallbackCookie, FileIdentity, FileChangeStamp, object)"/>) under the stamp the
    /// file has now.
    /// </summary>
    /// <remarks>
    /// <para>What a stamp cannot see, and what the kernel does about it: a file changed within 20 ms before the kernel took
    /// the stamp gets a stamp that is none (a later change within the same tick of a file system's clock could leave the
    /// times as they were, so nothing is cached on it); Linux 6.13 and later give such changes fine-grained times on ext4,
    /// xfs, btrfs and tmpfs anyway. A write through a shared writable mapping (mmap) moves the times only at the first
    /// write to a clean page: content changed through a page already dirty when the stamp was taken is not seen. A file
    /// system that keeps no times (some FUSE file systems) may not move them at all. Linux does not give user space the
    /// file's change cookie (i_version), so it is not part of the stamp.</para>
    /// </remarks>
    /// <param name="cookie">The filter's cookie.</param>
    /// <param name="file">The file's identity.</param>
    /// <param name="stamp">The stamp the file has now (<see cref="FileOperation.ChangeStamp"/> of the operation being decided).</param>
    /// <param name="verdict">The verdict, or null when there is none.</param>
    /// <returns><see cref="Status.Success"/> with the verdict; <see cref="Status.NotFound"/> when the filter cached none on
    /// this file, the file changed since (the stale verdict is dropped), the verdict was evicted, or
    /// <paramref name="stamp"/> is none; <see cref="Status.InvalidParameter"/> for a file that is none;
    /// <see cref="Status.InvalidHandle"/>.</returns>
    Status GetFileVerdict(CallbackCookie cookie, FileIdentity file, FileChangeStamp stamp, out object? verdict);

    /// <summary>
    /// Reads the content of the file an operation opened, through the very file object the requester will receive
    /// (FltReadFile on the operation's file object), so that what is scanned is what is used. Valid only inside this
    /// filter's post-create callback, for that operation's <see cref="FileOperation.File"/>. The read is not seen by
    /// any filter, and not by the requester either: its file offset does not move, and its access time does not change
    /// where Linux allows the kernel to read without updating it (O_NOATIME: the kernel is the file's owner or holds
    /// CAP_FOWNER). Only a regular file is read: reading a FIFO, a socket or a device would take data the requester is
    /// to receive. Also valid inside a cleanup callback of a filter registered for <see cref="FileOperationKind.Cleanup"/>,
    /// for that cleanup's <see cref="FileOperation.File"/>: the read goes through the kernel's own read-only description of
    /// the file whose description was released (which may move its access time).
    /// </summary>
    /// <param name="cookie">The filter's cookie.</param>
    /// <param name="file">The operation's <see cref="FileOperation.File"/>.</param>
    /// <param name="offset">The file offset to read at; at least 0.</param>
    /// <param name="buffer">Receives the bytes.</param>
    /// <param name="bytesRead">The number of bytes read; 0 at the end of the file.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> for a negative offset;
    /// <see cref="Status.InvalidDeviceState"/> when called outside a post-create or cleanup callback or for another file;
    /// <see cref="Status.AccessDenied"/> when the file was not opened for reading and cannot be read;
    /// <see cref="Status.NotSupported"/> for an object that is not a regular file; <see cref="Status.InvalidHandle"/>.</returns>
    Status ReadFile(CallbackCookie cookie, FileIdentity file, long offset, Span<byte> buffer, out int bytesRead);

    /// <summary>
    /// Reports the state of the file an operation acts on, as it is now (in the manner of FltQueryInformationFile with
    /// the standard and basic information, plus who has it open for writing): its identity and type, size, modification,
    /// change and birth times, the change stamp the verdict cache takes, whether anyone on the system has it open for
    /// writing, and how many write descriptions of it guests hold. Valid where
    /// <see cref="ReadFile(CallbackCookie, FileIdentity, long, Span{byte}, out int)"/> is: inside this filter's post-create
    /// callback for that operation's <see cref="FileOperation.File"/>, and inside a cleanup callback of a filter registered
    /// for <see cref="FileOperationKind.Cleanup"/> for that cleanup's file. The file is the one Linux resolved for the
    /// operation, reached through the kernel's descriptor of it, never reopened by its path.
    /// </summary>
    /// <remarks>
    /// <para><b>Open for writing.</b> Linux does not give user space a file's count of write opens (i_writecount), but it
    /// refuses a read lease on a file that any description, anywhere on the system, holds open for writing. The kernel asks
    /// for one on a read-only description of its own opened through its descriptor of the file (fcntl <c>F_SETLEASE</c>
    /// <c>F_RDLCK</c>) and releases it at once (<c>F_UNLCK</c>): refused, the file is open for writing
    /// (<see cref="WriterCheck.Writer"/>); granted, it is not (<see cref="WriterCheck.NoWriter"/>). A process that opens the
    /// file for writing, or truncates it, during those two system calls waits until the release (microseconds); one that
    /// opens it with O_NONBLOCK meanwhile fails with <c>EAGAIN</c>, as it would against any lease holder. The lease-break
    /// signal Linux sends the holder goes to SIGURG, which the kernel's process ignores. The answer is true when it is
    /// given: a writer may open the file right after it.</para>
    /// <para><b>Guest write descriptions.</b> <see cref="FileState.GuestWriteDescriptions"/> counts what Palisade sees: the
    /// open file descriptions open for writing on this file held, now, by the guest processes the kernel knows (those
    /// that made a call the kernel saw), each description once however many descriptors share it (dups, forks). A
    /// description held by a process outside Palisade, or passed out of the guests, is counted only by the lease check.</para>
    /// <para>The query costs system calls (a statx, an open, two fcntl, and a walk of the guests' descriptor tables): it is
    /// made only when a filter asks, never on an ordinary open.</para>
    /// </remarks>
    /// <param name="cookie">The filter's cookie.</param>
    /// <param name="file">The operation's <see cref="FileOperation.File"/>.</param>
    /// <param name="state">On success, the file's state; otherwise default.</param>
    /// <returns><see cref="Status.Success"/> (the file's facts are stated; whether the open-for-writing check could be
    /// made is in <see cref="FileState.Writers"/>); <see cref="Status.InvalidDeviceState"/> when called outside a
    /// post-create or cleanup callback of this filter or for another file; <see cref="Status.InvalidHandle"/> for a cookie
    /// that names no filter of this driver; <see cref="Status.AccessDenied"/> when the kernel holds no descriptor of the
    /// file it may use (a cleanup of a file the kernel could not open for reading); <see cref="Status.Unsuccessful"/> when
    /// Linux could not state the file.</returns>
    Status QueryFileState(CallbackCookie cookie, FileIdentity file, out FileState state);

    /// <summary>
    /// Reads the file a held create names: the file the kernel opened for it when the create was pended (see
    /// <see cref="PendPreOperation"/>), which is the file the guest receives if the create is allowed. From any thread,
    /// while the create is held. The read is not seen by any filter and changes nothing the guest observes (it has its own
    /// file offset).
    /// </summary>
    /// <param name="operation">A held create of this driver, as <see cref="PendPreOperation"/> returned it.</param>
    /// <param name="offset">The file offset to read at; at least 0.</param>
    /// <param name="buffer">Receives the bytes.</param>
    /// <param name="bytesRead">The number of bytes read; 0 at the end of the file.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> for a null handle, a negative offset or a
    /// held operation that is not a create; <see cref="Status.InvalidHandle"/> when the handle is not one of this driver's;
    /// <see cref="Status.ObjectNameNotFound"/> when the create names no existing regular file (nothing to read: a create of a
    /// new file, a directory, a device);
    /// <see cref="Status.AccessDenied"/> when the file exists but the guest could not read it; <see cref="Status.InvalidDeviceState"/>
    /// once the hold ended; <see cref="Status.Unsuccessful"/> for a read error of the file system.</returns>
    Status ReadFile(IPendedOperation operation, long offset, Span<byte> buffer, out int bytesRead);

    /// <summary>
    /// Holds the guest operation whose pre callback of this driver runs on the calling thread, so that the driver can
    /// decide it later (the counterpart of returning FLT_PREOP_PENDING). Call it inside the pre callback, then return
    /// <see cref="PreOperationStatus.Pending"/>; complete it later, from any thread (a work item, another operation's
    /// callback, a message from the driver's service), with <see cref="CompletePendedPreOperation"/>. A completion that comes
    /// before the callback returned is kept and applies when it returns.
    /// </summary>
    /// <remarks>
    /// <para>For a create of an existing regular file, the kernel opens the file here, on the guest's behalf, read-only and
    /// without blocking, and sets <see cref="FileOperation.File"/> of <paramref name="operation"/> to its identity: the filter
    /// reads it with <see cref="ReadFile(IPendedOperation, long, Span{byte}, out int)"/>, and when the create is allowed the
    /// guest's file is opened through that same file (its flags applied to it), so the file decided on is the file
    /// received even if the path is changed meanwhile. A create of a file that does not exist yet, of a directory or of any
    /// other kind of file is held without an open (<see cref="FileOperation.File"/> stays none).</para>
    /// <para>A callback that pends and then returns another verdict withdraws the hold: that verdict applies and the handle
    /// ends <see cref="PendedOperationState.Withdrawn"/>. A callback that returns <see cref="PreOperationStatus.Pending"/>
    /// without a successful pend faults (<see cref="RegistrationFaultKind.InvalidVerdict"/>).</para>
    /// </remarks>
    /// <param name="operation">The operation the pre callback received (its <c>ref</c> parameter, passed on).</param>
    /// <param name="cancelCallback">Told if the kernel ends the hold without a completion (timeout, the guest gone, the
    /// filter removed); null for no notification.</param>
    /// <param name="pended">On success, the completion handle; otherwise null.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidDeviceState"/> when called outside a pre callback of
    /// this driver's filters, or for another operation than the one the callback received, or a second time in one call;
    /// <see cref="Status.NotSupported"/> when the filter's <see cref="CallbackOptions.MaximumHoldTime"/> is zero, for a
    /// cleanup, read or write, or for an operation that is not a guest's own (own I/O, the kernel's);
    /// <see cref="Status.InsufficientResources"/> when 128 operations are held already.</returns>
    Status PendPreOperation(ref FileOperation operation, PendedOperationCancelCallback? cancelCallback, out IPendedOperation? pended);

    /// <summary>
    /// Completes a held operation (FltCompletePendedPreOperation) with the verdict its pre callback would have returned: the
    /// operation continues from this filter down (the filters below, the file system, then the post callbacks), on the
    /// kernel's thread of that operation. May be called from any thread, at any time before the hold's deadline.
    /// </summary>
    /// <param name="operation">The handle <see cref="PendPreOperation"/> returned.</param>
    /// <param name="verdict"><see cref="PreOperationStatus.SuccessWithCallback"/>, <see cref="PreOperationStatus.SuccessNoCallback"/>
    /// or <see cref="PreOperationStatus.Complete"/>.</param>
    /// <param name="status">With <see cref="PreOperationStatus.Complete"/>, the operation's status (an error denies it; for a
    /// create it must be an error). Ignored otherwise.</param>
    /// <param name="completionContext">With <see cref="PreOperationStatus.SuccessWithCallback"/>, the
    /// <see cref="FileOperation.CompletionContext"/> the post callback receives. Ignored otherwise.</param>
    /// <returns><see cref="Status.Success"/> when the verdict was taken; <see cref="Status.InvalidParameter"/> for a null
    /// handle, a handle of another kind, a verdict that is not one of the three, or a create completed with a success
    /// status (the hold stays; complete it again correctly); <see cref="Status.InvalidHandle"/> when the handle is not one of
    /// this driver's; <see cref="Status.AlreadyCompleted"/> when it was completed before; <see cref="Status.IoTimeout"/> when
    /// its deadline passed first (the timeout verdict applied); <see cref="Status.Cancelled"/> when the kernel cancelled it;
    /// <see cref="Status.InvalidDeviceState"/> when the pending callback withdrew it. Never throws.</returns>
    Status CompletePendedPreOperation(IPendedOperation operation, PreOperationStatus verdict, Status status, object? completionContext);

    /// <summary>
    /// Opens a file for the filter's own I/O (FltCreateFile): the create is sent only to filters below this one, so
    /// neither this filter nor any filter above it sees it, nor the reads through the returned stream. A read-only open
    /// is made with O_NOATIME where Linux allows it (the access time a guest sees does not move) and never waits on a
    /// lease or a FIFO; inotify and fanotify watchers of the file still see it opened and read.
    /// </summary>
    /// <param name="cookie">The filter's cookie, or <c>default(CallbackCookie)</c> for I/O on no filter's behalf,
    /// which every minifilter sees.</param>
    /// <param name="path">An absolute path.</param>
    /// <param name="access"><see cref="FileAccess.Read"/>, <see cref="FileAccess.Write"/> or both.</param>
    /// <param name="stream">On success, an open stream the caller disposes; otherwise null.</param>
    /// <returns><see cref="Status.Success"/>; <see cref="Status.InvalidParameter"/> for a relative or empty path;
    /// <see cref="Status.ObjectNameNotFound"/>; <see cref="Status.AccessDenied"/>; the status of a filter below that
    /// denied it; <see cref="Status.InvalidHandle"/> for a cookie that names no filter of this driver;
    /// <see cref="Status.InvalidDeviceState"/> after the driver unloaded.</returns>
    Status OpenFile(CallbackCookie cookie, string path, FileAccess access, out Stream? stream);

    /// <summary>
    /// Opens a file for the filter's own I/O, as <see cref="OpenFile(CallbackCookie, string, FileAccess, out Stream?)"/>
    /// does, and reports the identity of the file it opened, so that the caller can check that what it reads is the
    /// file it decided on (for example the image of a process create).
    /// </summary>
    /// <param name="cookie">The filter's cookie, or <c>default(CallbackCookie)</c> for I/O on no filter's behalf.</param>
    /// <param name="path">An absolute path.</param>
    /// <param name="access"><see cref="FileAccess.Read"/>, <see cref="FileAccess.Write"/> or both.</param>
    /// <param name="stream">On success, an open stream the caller disposes; otherwise null.</param>
    /// <param name="file">On success, the identity of the opened file; otherwise <see cref="FileIdentity.IsNone"/>.</param>
    /// <returns>The statuses of <see cref="OpenFile(CallbackCookie, string, FileAccess, out Stream?)"/>.</returns>
    Status OpenFile(CallbackCookie cookie, string path, FileAccess access, out Stream? stream, out FileIdentity file);

    /// <summary>
    /// Renames a file or directory as the filter's own I/O (FltSetInformationFile with FileRenameInformation): a
    /// <see cref="FileOperationKind.Rename"/> operation sent only to the filters below this one, then performed by the
    /// kernel. An existing <paramref name="newPath"/> is never replaced. Used, for example, to move a detected file
    /// into quarantine.
    /// </summary>
    /// <param name="cookie">The filter's cookie, or <c>default(CallbackCookie)</c> for I/O on no filter's behalf.</param>
    /// <param name="path">The absolute path of the file to rename.</param>
    /// <param name="newPath">Its new absolute path, on the same file system.</param>
    /// <returns><see cref="Status.Success"/> once renamed; <see cref="Status.InvalidParameter"/> for an empty or
    /// relative path, or a rename across file systems; <see cref="Status.ObjectNameNotFound"/> when
    /// <paramref name="path"/> does not exist; <see cref="Status.ObjectPathNotFound"/> when a folder of either path
    /// does not; <see cref="Status.ObjectNameCollision"/> when <paramref name="newPath"/> exists;
    /// <see cref="Status.AccessDenied"/>; the status of a filter below that denied or completed it;
    /// <see cref="Status.InvalidHandle"/> for a cookie that names no filter of this driver;
    /// <see cref="Status.InvalidDeviceState"/> after the driver unloaded; <see cref="Status.Unsuccessful"/> for any
    /// other failure of the file system.</returns>
    Status RenameFile(CallbackCookie cookie, string path, string newPath);

    /// <summary>
    /// Deletes a file (not a directory) as the filter's own I/O (FltSetInformationFile with
    /// FileDispositionInformation): a <see cref="FileOperationKind.Delete"/> operation sent only to the filters below
    /// this one, then performed by the kernel.
    /// </summary>
    /// <param name="cookie">The filter's cookie, or <c>default(CallbackCookie)</c> for I/O on no filter's behalf.</param>
    /// <param name="path">The absolute path of the file.</param>
    /// <returns><see cref="Status.Success"/> once deleted; <see cref="Status.InvalidParameter"/> for an empty or
    /// relative path; <see cref="Status.ObjectNameNotFound"/>; <see cref="Status.ObjectPathNotFound"/>;
    /// <see cref="Status.AccessDenied"/> (a directory included); the status of a filter below that denied or completed
    /// it; <see cref="Status.InvalidHandle"/>; <see cref="Status.InvalidDeviceState"/> after the driver unloaded;
    /// <see cref="Status.Unsuccessful"/> for any other failure of the file system.</returns>
    Status DeleteFile(CallbackCookie cookie, string path);

    /// <summary>
    /// Renames a file as <see cref="RenameFile(CallbackCookie, string, string)"/> does, but only when <paramref name="path"/>
    /// still names <paramref name="expected"/>, the file the caller decided on (a scanned file it quarantines), without
    /// following any symbolic link: the kernel opens the folder of <paramref name="path"/> with no symbolic link resolved
    /// (openat2 <c>RESOLVE_NO_SYMLINKS</c>), checks the identity of the last name in that very folder without following it,
    /// and renames relative to that folder, so a name swapped to another file, or a path that reaches the file through a
    /// symbolic link or <c>..</c> over one, moves nothing. The filters below see <see cref="FileOperation.File"/> set to
    /// <paramref name="expected"/>.
    /// </summary>
    /// <param name="cookie">The filter's cookie, or <c>default(CallbackCookie)</c> for I/O on no filter's behalf.</param>
    /// <param name="path">The absolute path of the file to rename.</param>
    /// <param name="newPath">Its new absolute path, on the same file system; its folder is also opened without following
    /// symbolic links.</param>
    /// <param name="expected">The identity the file must have; must not be none.</param>
    /// <returns>The statuses of <see cref="RenameFile(CallbackCookie, string, string)"/>, <see cref="Status.InvalidParameter"/>
    /// for an <paramref name="expected"/> that is none, and <see cref="Status.FileIdentityMismatch"/> when the name names
    /// another file, or a folder of either path is reached through a symbolic link.</returns>
    Status RenameFile(CallbackCookie cookie, string path, string newPath, FileIdentity expected);

    /// <summary>
    /// Deletes a file as <see cref="DeleteFile(CallbackCookie, string)"/> does, but only when <paramref name="path"/> still
    /// names <paramref name="expected"/>, checked and unlinked relative to its folder opened with no symbolic link resolved
    /// (see <see cref="RenameFile(CallbackCookie, string, string, FileIdentity)"/>).
    /// </summary>
    /// <param name="cookie">The filter's cookie, or <c>default(CallbackCookie)</c> for I/O on no filter's behalf.</param>
    /// <param name="path">The absolute path of the file.</param>
    /// <param name="expected">The identity the file must have; must not be none.</param>
    /// <returns>The statuses of <see cref="DeleteFile(CallbackCookie, string)"/>, <see cref="Status.InvalidParameter"/> for an
    /// <paramref name="expected"/> that is none, and <see cref="Status.FileIdentityMismatch"/> when the name names another
    /// file, or its folder is reached through a symbolic link.</returns>
    Status DeleteFile(CallbackCookie cookie, string path, FileIdentity expected);

    /// <summary>
    /// Changes a file's size, permission bits or owner as the filter's own I/O (FltSetInformationFile): a
    /// <see cref="FileOperationKind.SetInformation"/> operation sent only to the filters below this one, then
    /// performed by the kernel. A final symbolic link is followed, as truncate, chmod and chown do.
    /// </summary>
    /// <param name="cookie">The filter's cookie, or <c>default(CallbackCookie)</c> for I/O on no filter's behalf.</param>
    /// <param name="path">The absolute path of the file.</param>
    /// <param name="informationClass"><see cref="FileInformationClass.Size"/>, <see cref="FileInformationClass.Mode"/>
    /// or <see cref="FileInformationClass.Owner"/>.</param>
    /// <param name="value">The new size (at least 0); the new permission bits (0 to 07777); or the owner and group
    /// as in <see cref="FileOperation.InformationValue"/> (uid in the low 32 bits, gid in the high 32 bits, each
    /// 0xFFFFFFFF for unchanged).</param>
    /// <returns><see cref="Status.Success"/> once changed; <see cref="Status.InvalidParameter"/> for an empty or
    /// relative path, <see cref="FileInformationClass.None"/> or an out-of-range value;
    /// <see cref="Status.ObjectNameNotFound"/>; <see cref="Status.ObjectPathNotFound"/>;
    /// <see cref="Status.AccessDenied"/>; the status of a filter below that denied or completed it;
    /// <see cref="Status.InvalidHandle"/>; <see cref="Status.InvalidDeviceState"/> after the driver unloaded;
    /// <see cref="Status.Unsuccessful"/> for any other failure of the file system.</returns>
    Status SetFileInformation(CallbackCookie cookie, string path, FileInformationClass informationClass, long value);
}

/// <summary>
/// The state of a file as <see cref="IFilterManager.QueryFileState"/> found it: what statx(2) reports for the open file,
/// and who has it open for writing.
/// </summary>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning", "backup and audit")]
public readonly struct FileState
{
    /// <summary>The file's identity (st_dev and st_ino of the file the kernel's descriptor names).</summary>
    public FileIdentity File { get; init; }

    /// <summary>The file's type (the file type bits of st_mode).</summary>
    public FileObjectType Type { get; init; }

    /// <summary>The size in bytes (stx_size).</summary>
    public long Size { get; init; }

    /// <summary>The modification time (stx_mtime: the last change of the content) in nanoseconds since the epoch.</summary>
    public long ModificationTime { get; init; }

    /// <summary>The change time (stx_ctime: the last change of the content or of the metadata) in nanoseconds since the epoch.</summary>
    public long ChangeTime { get; init; }

    /// <summary>The birth time (stx_btime) in nanoseconds since the epoch; 0 when the file system does not record it.</summary>
    public long BirthTime { get; init; }

    /// <summary>
    /// The change stamp of the file now, under the rules of <see cref="FileOperation.ChangeStamp"/>: none when the file
    /// changed so recently that a further change could leave its times as they are (see
    /// <see cref="IFilterManager.GetFileVerdict"/>). Taken before the open-for-writing check, so a filter that caches a
    /// verdict on the content it reads after the query passes this stamp to <see cref="IFilterManager.SetFileVerdict(CallbackCookie, FileIdentity, FileChangeStamp, object)"/>.
    /// </summary>
    public FileChangeStamp ChangeStamp { get; init; }

    /// <summary>
    /// What the open-for-writing check found: <see cref="WriterCheck.Writer"/> or <see cref="WriterCheck.NoWriter"/>
    /// when it was made, otherwise why it could not be (see <see cref="WriterCheck"/>).
    /// </summary>
    public WriterCheck Writers { get; init; }

    /// <summary>
    /// True when some open file description anywhere on the system (a guest's, the kernel's, a process's outside Palisade)
    /// holds the file open for writing, as the lease check found (<see cref="Writers"/> is <see cref="WriterCheck.Writer"/>);
    /// false when it found none, or could not check (see <see cref="Writers"/>). In a create's post callback of an open
    /// for writing, the description being opened is already open, so this is true.
    /// </summary>
    public bool OpenForWriting => Writers == WriterCheck.Writer;

    /// <summary>
    /// How many distinct open file descriptions open for writing on this file the guest processes the kernel knows hold
    /// now (see the remarks of <see cref="IFilterManager.QueryFileState"/>); -1 when the kernel could not tell two
    /// descriptors apart (kcmp(2) refused). In a create's post callback, the description being opened is not counted: the
    /// guest does not hold it until the create completes.
    /// </summary>
    public int GuestWriteDescriptions { get; init; }
}

/// <summary>What the kernel may decide on a cached file verdict without calling the filter (see
/// <see cref="IFilterManager.SetFileVerdict(CallbackCookie, FileIdentity, FileChangeStamp, object, FileVerdictFlags)"/>).</summary>
[Flags]
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning")]
public enum FileVerdictFlags
{
    /// <summary>Nothing: the verdict is only found by <see cref="IFilterManager.GetFileVerdict"/>, and the filter's callbacks
    /// are called as usual.</summary>
    None = 0,
    /// <summary>
    /// While the verdict holds (the file unchanged: the same identity and change stamp), the kernel does not call the
    /// filter's post-create callback for an open of the file that succeeded and asks for no write access (no
    /// <see cref="FileAccessRights.Write"/> or <see cref="FileAccessRights.Append"/>, no
    /// <see cref="CreateDisposition.Overwrite"/> or <see cref="CreateDisposition.OverwriteIf"/> disposition) and for which its
    /// pre-create handed no completion context. The pre-create, if the filter registered one, is still called.
    /// </summary>
    SkipPostCreate = 1,
}

/// <summary>What the check of whether a file is open for writing found (see <see cref="IFilterManager.QueryFileState"/>).</summary>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning")]
public enum WriterCheck
{
    /// <summary>No check was made (a default <see cref="FileState"/>).</summary>
    NotChecked,
    /// <summary>No description anywhere holds the file open for writing (Linux granted the read lease).</summary>
    NoWriter,
    /// <summary>Some description holds the file open for writing (Linux refused the read lease with EAGAIN).</summary>
    Writer,
    /// <summary>The file is not a regular file: Linux gives leases on regular files only, and the kernel opens nothing
    /// else (opening a FIFO or a device has effects of its own).</summary>
    NotRegularFile,
    /// <summary>Leases are disabled on this machine (<c>/proc/sys/fs/leases-enable</c> is 0).</summary>
    LeasesDisabled,
    /// <summary>The file's file system gives no leases (for example some network and FUSE file systems).</summary>
    LeasesNotSupported,
    /// <summary>The kernel may not take a lease on the file: it is not the file's owner and lacks CAP_LEASE, or it may not
    /// open the file for reading.</summary>
    NotPermitted,
}

/// <summary>
/// The file operations a minifilter can register for. Every Linux call that changes a file system object reaches
/// filters as one of them; the member of each lists its calls.
/// </summary>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning", "self-protection of files")]
public enum FileOperationKind
{
    /// <summary>
    /// An open or a create of a name (IRP_MJ_CREATE): open, openat, openat2, creat; and the calls that make a new name
    /// without opening it, with <see cref="CreateDisposition.Create"/>, <see cref="FileAccessRights.None"/> and the
    /// type they make in <see cref="FileOperation.FileType"/>: mkdir, mkdirat (<see cref="FileObjectType.Directory"/>),
    /// mknod, mknodat (the type of its mode), symlink, symlinkat (<see cref="FileObjectType.SymbolicLink"/>).
    /// </summary>
    Create,
    /// <summary>
    /// The release of an open file description that a guest opened for writing on a regular file (IRP_MJ_CLEANUP): once,
    /// when the last descriptor that shares it is closed (dups and the copies a fork made included) or the last process
    /// that holds it exits, however it ends (a SIGKILL too). Opt-in. A notification: it cannot be refused or held, and its
    /// status is ignored.
    /// </summary>
    /// <remarks>
    /// <para>The callbacks run on a kernel thread of their own, after the release (the guest has gone on); a filter reads
    /// the file with <see cref="IFilterManager.ReadFile(CallbackCookie, FileIdentity, long, Span{byte}, out int)"/> on
    /// <see cref="FileOperation.File"/>, through the kernel's own read-only description of that very file.
    /// <see cref="FileOperation.RequesterProcessId"/> is the process that released the description (the one that closed its
    /// last descriptor, or that exited); <see cref="FileOperation.RequesterThreadId"/> is 0 (Linux names the process, not
    /// the thread); <see cref="FileOperation.UserId"/> is its real user id, or -1 when it was gone before the kernel read it.
    /// At a process's exit, its cleanups may come after its exit notification.</para>
    /// <para>How it is seen: the kernel watches each regular file it opens for writing for a guest (fanotify, Linux's
    /// FAN_CLOSE_WRITE), which needs CAP_SYS_ADMIN. The watch is on the file, so the release of a description of that file
    /// opened for writing by a process outside Palisade is reported as well, with that process's id (no process
    /// notification names it). Without CAP_SYS_ADMIN the kernel falls back to reporting each close(2) of a descriptor open
    /// for writing, which is not the release (a dup still holds it; <c>echo hi &gt; f</c> is reported twice, once before the
    /// write) and misses the releases of a process's exit.</para>
    /// </remarks>
    Cleanup,
    /// <summary>
    /// A rename: rename, renameat, renameat2 (<see cref="FileOperation.Flags"/> holds its RENAME_* flags:
    /// RENAME_EXCHANGE swaps <see cref="FileOperation.Path"/> and <see cref="FileOperation.NewPath"/>, so both change).
    /// </summary>
    Rename,
    /// <summary>A delete: unlink, unlinkat, rmdir (<see cref="FileOperation.IsDirectory"/> for rmdir and AT_REMOVEDIR).</summary>
    Delete,
    /// <summary>
    /// A change of a file's information, data or names without a write through a descriptor; see
    /// <see cref="FileInformationClass"/> for what changes and through which calls (truncate, ftruncate, fallocate,
    /// chmod, fchmod, chown, fchown, utimensat, futimens, the setxattr and removexattr families, link, linkat).
    /// </summary>
    SetInformation,
    /// <summary>A read. Opt-in; see the remarks of <see cref="IFilterManager"/>.</summary>
    Read,
    /// <summary>A write. Opt-in; see the remarks of <see cref="IFilterManager"/>.</summary>
    Write,
}

/// <summary>
/// Which information a set-information operation changes, with the Linux calls that change it. A call on a descriptor
/// (fchmod, ftruncate, ...) is decided on the file behind the descriptor, as a call on a path is on the object the path
/// resolves to.
/// </summary>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "self-protection of files")]
public enum FileInformationClass
{
    /// <summary>Not a set-information operation.</summary>
    None,
    /// <summary>The size: truncate, ftruncate (<see cref="FileOperation.InformationValue"/> is the new size).</summary>
    Size,
    /// <summary>The permission bits: chmod, fchmod, fchmodat, fchmodat2 (<see cref="FileOperation.InformationValue"/> is the new mode).</summary>
    Mode,
    /// <summary>The owner or group: chown, fchown, lchown, fchownat (<see cref="FileOperation.InformationValue"/>: uid in the low 32 bits, gid in the high 32 bits, 0xFFFFFFFF for unchanged).</summary>
    Owner,
    /// <summary>The access and modification times: utime, utimes, futimesat, utimensat, futimens (<see cref="FileOperation.Flags"/> holds the AT_* flags).</summary>
    Times,
    /// <summary>
    /// The space allocated to a file, and with some modes its content: fallocate (<see cref="FileOperation.InformationValue"/>
    /// is its FALLOC_FL_* mode: punching a hole or zeroing a range changes data, collapsing or inserting a range moves
    /// it; <see cref="FileOperation.Offset"/> and <see cref="FileOperation.Length"/> are the range).
    /// </summary>
    Allocation,
    /// <summary>
    /// An extended attribute (which also holds ACLs, file capabilities and security labels): setxattr, lsetxattr,
    /// fsetxattr, setxattrat (<see cref="FileOperation.InformationValue"/> 0), removexattr, lremovexattr, fremovexattr,
    /// removexattrat (<see cref="FileOperation.InformationValue"/> 1); <see cref="FileOperation.AttributeName"/> names it.
    /// </summary>
    ExtendedAttributes,
    /// <summary>
    /// A new name for an existing file (a hard link): link, linkat. <see cref="FileOperation.Path"/> is the file,
    /// <see cref="FileOperation.NewPath"/> the name the call adds; writing through either name changes both.
    /// </summary>
    Link,
}

/// <summary>What kind of object a file operation acts on, as Linux reports it (the file type bits of st_mode).</summary>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning")]
public enum FileObjectType
{
    /// <summary>Not known: the operation came without a resolved object (for example a filter's own I/O by path).</summary>
    Unknown,
    /// <summary>No object: the name does not exist (a create of a new name makes one only with the type of its call).</summary>
    None,
    /// <summary>A regular file.</summary>
    Regular,
    /// <summary>A directory.</summary>
    Directory,
    /// <summary>A symbolic link (an operation that does not follow it acts on the link itself).</summary>
    SymbolicLink,
    /// <summary>A character device.</summary>
    CharacterDevice,
    /// <summary>A block device.</summary>
    BlockDevice,
    /// <summary>A FIFO (named pipe).</summary>
    Fifo,
    /// <summary>A UNIX domain socket.</summary>
    Socket,
}

/// <summary>The rights a create asks for.</summary>
[Flags]
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning")]
public enum FileAccessRights
{
    /// <summary>No data access (for example an O_PATH open).</summary>
    None = 0,
    /// <summary>Read data.</summary>
    Read = 1,
    /// <summary>Write data.</summary>
    Write = 2,
    /// <summary>Append only.</summary>
    Append = 4,
    /// <summary>
    /// Execute the file as a program image: the create an exec makes (execve, execveat, fexecve), sent to minifilters
    /// before the process callbacks, with <see cref="FileOperation.File"/>, <see cref="FileOperation.Path"/> and
    /// <see cref="FileOperation.FileType"/> of the image as Linux resolves it for the guest (for a memfd,
    /// <c>/memfd:NAME (deleted)</c>), <see cref="CreateDisposition.Open"/> and <see cref="FileOperation.OpenFlags"/> 0. A
    /// pre callback that denies it fails the exec with the status's errno; its post callback reads exactly that image with
    /// <see cref="IFilterManager.ReadFile(CallbackCookie, FileIdentity, long, Span{byte}, out int)"/> (the kernel opens
    /// it for reading from its handle of the resolved file, whatever the guest may read), and may cancel the exec. The
    /// kernel checks after the exec that the image that runs is the one decided on. A script's interpreters and the ELF
    /// interpreter reach image-load callbacks, not minifilters.
    /// </summary>
    Execute = 8,
}

/// <summary>What a create does when the file exists or not (derived from O_CREAT, O_EXCL and O_TRUNC).</summary>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning")]
public enum CreateDisposition
{
    /// <summary>Open an existing file; fail if it does not exist (FILE_OPEN).</summary>
    Open,
    /// <summary>Create a new file; fail if it exists (FILE_CREATE: O_CREAT|O_EXCL).</summary>
    Create,
    /// <summary>Open it, or create it when it does not exist (FILE_OPEN_IF: O_CREAT).</summary>
    OpenIf,
    /// <summary>Open and truncate an existing file (FILE_OVERWRITE: O_TRUNC).</summary>
    Overwrite,
    /// <summary>Open and truncate, or create (FILE_OVERWRITE_IF: O_CREAT|O_TRUNC).</summary>
    OverwriteIf,
}

/// <summary>
/// What a create did (the counterpart of the <c>IoStatus.Information</c> of IRP_MJ_CREATE: FILE_OPENED, FILE_CREATED,
/// FILE_OVERWRITTEN). Linux has no counterpart of FILE_SUPERSEDED (an open never replaces a file with a new one).
/// </summary>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning", "backup and audit")]
public enum CreateResult
{
    /// <summary>Not known: a pre callback, an operation that is not a create, a create that failed, or the rare open
    /// whose outcome the kernel could not learn (see <see cref="FileOperation.CreateResult"/>).</summary>
    Unknown,
    /// <summary>An existing object was opened as it was (FILE_OPENED).</summary>
    Opened,
    /// <summary>The create made the object: an open with O_CREAT that found no file, O_TMPFILE, mkdir, mknod, symlink (FILE_CREATED).</summary>
    Created,
    /// <summary>An existing regular file was opened with O_TRUNC, which emptied it (FILE_OVERWRITTEN), whatever its size was.</summary>
    Overwritten,
}

/// <summary>What a pre callback returns.</summary>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning")]
public enum PreOperationStatus
{
    /// <summary>Pass the operation down and call this filter's post callback (FLT_PREOP_SUCCESS_WITH_CALLBACK).</summary>
    SuccessWithCallback,
    /// <summary>Pass the operation down without a post callback (FLT_PREOP_SUCCESS_NO_CALLBACK).</summary>
    SuccessNoCallback,
    /// <summary>Finish the operation now with <see cref="FileOperation.Status"/> (FLT_PREOP_COMPLETE).</summary>
    Complete,
    /// <summary>
    /// The operation is held, to be decided later (FLT_PREOP_PENDING): valid only after a successful
    /// <see cref="IFilterManager.PendPreOperation"/> in the same call.
    /// </summary>
    Pending,
}

/// <summary>
/// One file operation as a minifilter sees it (the counterpart of FLT_CALLBACK_DATA with its related objects).
/// </summary>
/// <remarks>
/// <para><b>Objects, not text.</b> <see cref="Path"/>, <see cref="File"/>, <see cref="FileType"/> and
/// <see cref="FileSystemType"/> describe the object as Linux resolved it for the requester (its root, working directory,
/// credentials), in pre callbacks as well as post callbacks: the same object the operation then acts on. Decide on
/// them. <see cref="RequestedPath"/> is the requester's own spelling, for display and audit only: one spelling can name
/// two objects and two spellings one object.</para>
/// <para><b>Cost.</b> In a pre callback the object is resolved the first time one of those four is read, not before:
/// a filter that decides on <see cref="Access"/> or <see cref="Disposition"/> alone costs the operation nothing more.</para>
/// </remarks>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning", "self-protection of files")]
public struct FileOperation
{
    private string? _path;
    private string? _newPath;
    private FileIdentity _file;
    private FileObjectType _type;
    private long _fileSystemType;
    private FileChangeStamp _stamp;
    private bool _isDirectory;

    /// <summary>The operation.</summary>
    public FileOperationKind Kind { get; init; }

    /// <summary>The guest process that asked for it.</summary>
    public int RequesterProcessId { get; init; }

    /// <summary>The guest thread that asked for it.</summary>
    public int RequesterThreadId { get; init; }

    /// <summary>The real user id of the requester.</summary>
    public int UserId { get; init; }

    /// <summary>
    /// The object's path as Linux resolved it: absolute, with no <c>.</c>, <c>..</c>, repeated slashes or symbolic
    /// links, in the supervisor's view of the file system (a file in a chrooted guest's <c>/etc</c> is
    /// <c>/srv/jail/etc/...</c>). An operation that does not follow a final symbolic link (unlink, lchown, an open with
    /// O_NOFOLLOW) has the link's own path; one that follows it has its target's. A reopen through
    /// <c>/proc/PID/fd/N</c> has the path of the file behind the descriptor, and a call on a descriptor (fchmod, ...)
    /// the path of that file. For a name that does not exist yet (a create), the resolved directory followed by the
    /// new name. A file in a mount the supervisor cannot reach (a guest's private mount namespace) has its path within
    /// that namespace; a file whose path is longer than PATH_MAX, or that has been deleted, has what Linux reports for
    /// it (possibly ending in <c>" (deleted)"</c>).
    /// </summary>
    public string Path
    {
        readonly get => _path ?? Source?.ResolvedPath() ?? RequestedPath ?? "";
        init => _path = value;
    }

    /// <summary>
    /// The path as the requester spelled it (made absolute against its working directory or directory descriptor when
    /// that directory's path is known), before any resolution; null for a call on a descriptor. Not for decisions:
    /// see the remarks.
    /// </summary>
    public string? RequestedPath { get; init; }

    /// <summary>For a rename or a link, the destination as Linux resolves it (its directory resolved, then the name); otherwise null.</summary>
    public string? NewPath
    {
        readonly get => _newPath ?? Source?.ResolvedNewPath() ?? RequestedNewPath;
        init => _newPath = value;
    }

    /// <summary>For a rename or a link, the destination as the requester spelled it; otherwise null. Not for decisions.</summary>
    public string? RequestedNewPath { get; init; }

    /// <summary>For a create, the rights asked for.</summary>
    public FileAccessRights Access { get; init; }

    /// <summary>For a create, what happens when the file exists or not.</summary>
    public CreateDisposition Disposition { get; init; }

    /// <summary>
    /// In a create's post callback, what the create did: <see cref="CreateResult.Created"/> when it made the file,
    /// <see cref="CreateResult.Opened"/> when it opened one that existed, <see cref="CreateResult.Overwritten"/> when it
    /// emptied an existing regular file (O_TRUNC). <see cref="CreateResult.Unknown"/> in pre callbacks and for other operations.
    /// </summary>
    /// <remarks>
    /// Linux does not say whether an <c>O_CREAT</c> open found the file. So that the answer is a fact and not a guess, the
    /// kernel makes such an open (only when some filter asked for a post-create callback) as an exclusive create first
    /// (<c>O_CREAT|O_EXCL</c>): when that succeeds the file was created by this very open; when it fails with
    /// <c>EEXIST</c> the file is opened without <c>O_CREAT</c>, which cannot create it. Should the name disappear between
    /// the two (another process deleted it), the pair is tried again; a name that exists but whose target does not (a
    /// dangling symbolic link, which only a following open would create through) is opened once more with the guest's
    /// own flags and reported <see cref="CreateResult.Unknown"/>. An open without <c>O_CREAT</c> costs nothing more.
    /// </remarks>
    public CreateResult CreateResult { get; init; }

    /// <summary>For a create, the raw Linux open flags; 0 otherwise.</summary>
    public int OpenFlags { get; init; }

    /// <summary>
    /// For the other operations, the raw flags of the call: RENAME_* for a rename, AT_* (such as AT_REMOVEDIR or
    /// AT_SYMLINK_NOFOLLOW) for unlinkat, fchownat, fchmodat2, utimensat and linkat, XATTR_* for a set of an extended
    /// attribute; 0 otherwise.
    /// </summary>
    public int Flags { get; init; }

    /// <summary>For set-information, what it changes.</summary>
    public FileInformationClass InformationClass { get; init; }

    /// <summary>For set-information, the new value; see each <see cref="FileInformationClass"/> member for its meaning.</summary>
    public long InformationValue { get; init; }

    /// <summary>For an extended attribute (<see cref="FileInformationClass.ExtendedAttributes"/>), its name; otherwise null.</summary>
    public string? AttributeName { get; init; }

    /// <summary>
    /// For read and write: the file offset; for an allocation, the start of the range; 0 otherwise. A cleanup carries no
    /// count of the bytes written through the released description: Linux keeps none per description, and its file
    /// position is not that number (a seek, pwrite or O_APPEND write moves it otherwise). What a cleanup reports exactly is
    /// the file as the release left it: its <see cref="ChangeStamp"/>, and its size and times through
    /// <see cref="IFilterManager.QueryFileState"/>; a filter that kept the stamp of the file's open compares the two.
    /// </summary>
    public long Offset { get; init; }

    /// <summary>For read and write: the number of bytes asked for; for an allocation, the length of the range (bounded to <see cref="int.MaxValue"/>).</summary>
    public int Length { get; init; }

    /// <summary>
    /// True when the target is a directory: an existing directory (its <see cref="FileType"/> is
    /// <see cref="FileObjectType.Directory"/>; reading this resolves the object as <see cref="FileType"/> does), a directory
    /// a create makes (mkdir), or the target of rmdir and of unlinkat with AT_REMOVEDIR.
    /// </summary>
    public bool IsDirectory
    {
        readonly get => _isDirectory || (Source is not null && FileType == FileObjectType.Directory);
        init => _isDirectory = value;
    }

    /// <summary>
    /// The identity of the object the operation acts on; none when there is no object yet (a create of a new name, in
    /// its pre callback). In a create's post callback, the file actually opened; after
    /// <see cref="IFilterManager.PendPreOperation"/>, the regular file the held create was opened on.
    /// </summary>
    /// <remarks>The kernel sets it. The setter is there for code that builds an operation itself (a test harness); a
    /// callback that sets it changes only its own copy of the operation: the filters below it, the file system and the
    /// post callbacks still see the object the kernel resolved (only <see cref="Status"/> and
    /// <see cref="CompletionContext"/> are read back from a callback).</remarks>
    public FileIdentity File
    {
        readonly get => _file.IsNone && Source is { } source ? source.Identity() : _file;
        set => _file = value;
    }

    /// <summary>
    /// The change stamp of the file the operation opened (see <see cref="FileChangeStamp"/>), taken by the kernel from the
    /// very descriptor the requester receives before any filter can read through it: in a create's post callback, and
    /// after <see cref="IFilterManager.PendPreOperation"/> for the file a held create was opened on; in a cleanup, the stamp
    /// of the file as the release left it, taken from the kernel's own read-only description of it before any filter can
    /// read. None elsewhere, when
    /// the file could not be stated, and when it changed within the last 20 ms (see
    /// <see cref="IFilterManager.GetFileVerdict"/>). Pass it with <see cref="File"/> to the verdict cache.
    /// </summary>
    public FileChangeStamp ChangeStamp
    {
        readonly get => _stamp.IsNone && Source is { } source ? source.ChangeStamp() : _stamp;
        internal set => _stamp = value;
    }

    /// <summary>
    /// The type of the object the operation acts on; for a create of a name that does not exist yet, the type the call
    /// makes (<see cref="FileObjectType.Regular"/> for an open with O_CREAT, <see cref="FileObjectType.Directory"/> for
    /// mkdir, ...), or <see cref="FileObjectType.None"/> when it makes none.
    /// </summary>
    public FileObjectType FileType
    {
        readonly get => _type != FileObjectType.Unknown ? _type : Source?.Type() ?? FileObjectType.Unknown;
        init => _type = value;
    }

    /// <summary>
    /// The type of the file system that holds the object, as statfs(2) reports it in <c>f_type</c> (for example
    /// <c>0x9fa0</c> proc, <c>0x62656572</c> sysfs, <c>0x1cd1</c> devpts, <c>0x01021994</c> tmpfs, <c>0xef53</c> ext4);
    /// for a name that does not exist yet, its directory's; 0 when unknown.
    /// </summary>
    public long FileSystemType
    {
        readonly get => _fileSystemType != 0 ? _fileSystemType : Source?.FileSystemType() ?? 0;
        init => _fileSystemType = value;
    }

    /// <summary>
    /// The status of the operation. Set it with <see cref="PreOperationStatus.Complete"/> to finish the operation in
    /// a pre callback; in a post callback it holds the outcome, and setting an error on a create cancels the open.
    /// </summary>
    public Status Status { get; set; }

    /// <summary>A value the pre callback hands to its own post callback (the completion context).</summary>
    public object? CompletionContext { get; set; }

    /// <summary>
    /// In a pre callback, when the operation would time out if this filter held it, on the clock of
    /// <see cref="Environment.TickCount64"/> (milliseconds): the moment the kernel began deciding the operation plus the
    /// filter's <see cref="CallbackOptions.MaximumHoldTime"/>. 0 when the filter cannot hold this operation (no hold time,
    /// not a guest's operation, or an operation that cannot be held). The kernel sets it before each pre callback; a
    /// change made by the callback has no effect.
    /// </summary>
    public long HoldDeadline { get; set; }

    /// <summary>Where the resolved facts come from when the kernel resolves them on demand (set by the kernel only).</summary>
    internal IFileObjectSource? Source { readonly get; set; }
}

/// <summary>
/// The kernel's source of the facts of an operation's object, resolved on the first read and kept for the operation.
/// Implemented by the kernel; invisible to drivers.
/// </summary>
internal interface IFileObjectSource
{
    /// <summary>The resolved path, or null when none could be resolved.</summary>
    string? ResolvedPath();

    /// <summary>The resolved destination of a rename or link, or null.</summary>
    string? ResolvedNewPath();

    /// <summary>The object's identity, or none.</summary>
    FileIdentity Identity();

    /// <summary>The object's type.</summary>
    FileObjectType Type();

    /// <summary>The statfs f_type of its file system, or 0.</summary>
    long FileSystemType();

    /// <summary>The change stamp of the opened file, taken before any filter read it; none when there is none.</summary>
    FileChangeStamp ChangeStamp();
}

/// <summary>A minifilter pre callback.</summary>
/// <param name="operation">The filter's copy of the operation; only <see cref="FileOperation.Status"/> and
/// <see cref="FileOperation.CompletionContext"/> are read back.</param>
/// <returns>Whether to pass the operation down, with or without a post callback, to complete it, or (after
/// <see cref="IFilterManager.PendPreOperation"/>) that it is held.</returns>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning")]
public delegate PreOperationStatus FilePreCallback(ref FileOperation operation);

/// <summary>A minifilter post callback.</summary>
/// <param name="operation">The filter's copy of the completed operation; on a create that succeeded so far, setting an
/// error status cancels the open. Nothing else is read back.</param>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning")]
public delegate void FilePostCallback(ref FileOperation operation);

/// <summary>The callbacks of a minifilter for one operation (an FLT_OPERATION_REGISTRATION entry).</summary>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning")]
public sealed class FileOperationRegistration
{
    /// <summary>The operation.</summary>
    public required FileOperationKind Kind { get; init; }

    /// <summary>The pre callback, or null.</summary>
    public FilePreCallback? PreOperation { get; init; }

    /// <summary>The post callback, or null.</summary>
    public FilePostCallback? PostOperation { get; init; }

    /// <summary>
    /// Which operations of this kind the kernel calls the callbacks for (in the manner of minifilter operation
    /// registration flags): <see cref="FileOperationFlags.None"/> (the default) for all of them, or
    /// <see cref="FileOperationFlags.DriverIoOnly"/>. The kernel decides on the flags without calling the filter, so an
    /// operation they leave out costs the filter nothing (for a driver isolated in a driver host, no round trip).
    /// <see cref="IFilterManager.RegisterFilter"/> refuses a flag this version does not define.
    /// </summary>
    public FileOperationFlags Flags { get; init; }
}

/// <summary>Which operations of a kind a filter's callbacks are called for (<see cref="FileOperationRegistration.Flags"/>).</summary>
[Flags]
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "application control", "a filter that places its driver's own I/O")]
public enum FileOperationFlags
{
    /// <summary>Every operation of the kind: the guests' and the drivers' own I/O.</summary>
    None = 0,

    /// <summary>
    /// Only the I/O drivers issue through <see cref="IFilterManager"/> (<see cref="IFilterManager.OpenFile(CallbackCookie, string, FileAccess, out Stream?)"/>,
    /// <see cref="IFilterManager.RenameFile(CallbackCookie, string, string)"/>, <see cref="IFilterManager.DeleteFile(CallbackCookie, string)"/>,
    /// <see cref="IFilterManager.SetFileInformation"/>), which reaches the filters below the issuing filter's altitude;
    /// never a guest's operation. For a filter that exists to place, or to read in its post callback, its driver's own
    /// I/O: a guest's operations pass it as if it were not registered.
    /// </summary>
    DriverIoOnly = 1,
}

/// <summary>A minifilter registration (FLT_REGISTRATION).</summary>
[ApiInfo(ApiArea.Files, "1.0", ApiState.Draft, "antivirus on-access scanning")]
public sealed class FilterRegistration
{
    /// <summary>The filter's name, unique, 1–64 characters.</summary>
    public required string Name { get; init; }

    /// <summary>The altitude, a decimal number such as <c>"320000"</c>, unique among minifilters. Antivirus filters
    /// conventionally use 320000–329999, encryption 140000–149999, activity monitors 360000–389999.</summary>
    public required string Altitude { get; init; }

    /// <summary>The operations and their callbacks; each operation at most once.</summary>
    public required IReadOnlyList<FileOperationRegistration> Operations { get; init; }

    /// <summary>
    /// How many verdicts the filter's verdict cache holds (<see cref="IFilterManager.SetFileVerdict(CallbackCookie, FileIdentity, FileChangeStamp, object)"/>): 0 (the default)
    /// for <see cref="DefaultVerdictCacheCapacity"/>, else from 4 to <see cref="MaxVerdictCacheCapacity"/>, rounded up to
    /// a multiple of 4 (4 verdicts per slot). The table takes 64 bytes per verdict it can hold (plus the verdict objects
    /// the filter stores), allocated at the filter's first store: 4,096 take 256 KiB, 131,072 take 8 MiB. Size it to the
    /// number of files the product expects to see judged again; a verdict evicted for room only costs a new examination.
    /// </summary>
    public int VerdictCacheCapacity { get; init; }

    /// <summary>The capacity of a verdict cache when <see cref="VerdictCacheCapacity"/> is 0: 4,096 verdicts.</summary>
    public const int DefaultVerdictCacheCapacity = 4096;

    /// <summary>The largest <see cref="VerdictCacheCapacity"/>, and the most verdicts the caches of all filters may hold
    /// together: 4,194,304 verdicts (256 MiB of table). A registration beyond it fails with
    /// <see cref="Status.InsufficientResources"/>.</summary>
    public const int MaxVerdictCacheCapacity = 4 * 1024 * 1024;
}
