// The operations a callback decides on, by value. The kernel sends every fact of the operation (the object resolved, in
// a pre callback too: an isolated filter costs the operation its resolution) and reads back only the verdict fields it
// reads from an in-kernel callback.
using Palisade.Api;

namespace Palisade.Kernel.Isolation;

internal static class IsolationCodec
{
    public static void Write(ref RecordWriter w, in FileOperation op)
    {
        w.I32((int)op.Kind);
        w.I32(op.RequesterProcessId);
        w.I32(op.RequesterThreadId);
        w.I32(op.UserId);
        w.String(op.Path);
        w.String(op.RequestedPath);
        w.String(op.NewPath);
        w.String(op.RequestedNewPath);
        w.I32((int)op.Access);
        w.I32((int)op.Disposition);
        w.I32((int)op.CreateResult);
        w.I32(op.OpenFlags);
        w.I32(op.Flags);
        w.I32((int)op.InformationClass);
        w.I64(op.InformationValue);
        w.String(op.AttributeName);
        w.I64(op.Offset);
        w.I32(op.Length);
        w.Bool(op.IsDirectory);
        w.Identity(op.File);
        w.Stamp(op.ChangeStamp);
        w.I32((int)op.FileType);
        w.I64(op.FileSystemType);
        w.Status(op.Status);
        w.I64(op.HoldDeadline);
    }

    public static FileOperation ReadFileOperation(ref RecordReader r)
    {
        var op = new FileOperation
        {
            Kind = r.Enum<FileOperationKind>(),
            RequesterProcessId = r.I32(),
            RequesterThreadId = r.I32(),
            UserId = r.I32(),
            Path = r.Text(),
            RequestedPath = r.String(),
            NewPath = r.String(),
            RequestedNewPath = r.String(),
            Access = r.Flags<FileAccessRights>(),
            Disposition = r.Enum<CreateDisposition>(),
            CreateResult = r.Enum<CreateResult>(),
            OpenFlags = r.I32(),
            Flags = r.I32(),
            InformationClass = r.Enum<FileInformationClass>(),
            InformationValue = r.I64(),
            AttributeName = r.String(),
            Offset = r.I64(),
            Length = r.I32(),
            IsDirectory = r.Bool(),
            File = r.Identity(),
            ChangeStamp = r.Stamp(),
            FileType = r.Enum<FileObjectType>(),
            FileSystemType = r.I64(),
            Status = r.Status(),
            HoldDeadline = r.I64(),
        };
        return op;
    }

    public static void Write(ref RecordWriter w, in ProcessCreateInfo info)
    {
        w.I32(info.ProcessId);
        w.I64(info.ProcessStartKey);
        w.I32(info.ParentProcessId);
        w.I64(info.ParentProcessStartKey);
        w.I32(info.CreatorProcessId);
        w.I32(info.CreatorThreadId);
        w.String(info.ImagePath);
        w.String(info.CommandLine);
        WriteList(ref w, info.Arguments);
        WriteList(ref w, info.EnvironmentVariables);
        w.String(info.WorkingDirectory);
        w.I32(info.UserId);
        w.Bool(info.Credentials is not null);
        if (info.Credentials is { } c)
        {
            w.I32(c.RealUserId);
            w.I32(c.EffectiveUserId);
            w.I32(c.SavedUserId);
            w.I32(c.FileSystemUserId);
            w.I32(c.RealGroupId);
            w.I32(c.EffectiveGroupId);
            w.I32(c.SavedGroupId);
            w.I32(c.FileSystemGroupId);
            w.U32((uint)c.SupplementaryGroups.Count);
            foreach (int g in c.SupplementaryGroups)
            {
                w.I32(g);
            }

            w.U64(c.EffectiveCapabilities);
            w.U64(c.PermittedCapabilities);
        }

        w.Identity(info.File);
        w.Status(info.CreationStatus);
        w.I64(info.HoldDeadline);
    }

    public static ProcessCreateInfo ReadProcessCreate(ref RecordReader r)
    {
        int pid = r.I32();
        long key = r.I64();
        int parent = r.I32();
        long parentKey = r.I64();
        int creator = r.I32();
        int creatorThread = r.I32();
        string image = r.Text();
        string commandLine = r.Text();
        string[] arguments = r.Strings();
        string[] environment = r.Strings();
        string? directory = r.String();
        int user = r.I32();
        ProcessCredentials? credentials = null;
        if (r.Bool())
        {
            int ruid = r.I32(), euid = r.I32(), suid = r.I32(), fsuid = r.I32();
            int rgid = r.I32(), egid = r.I32(), sgid = r.I32(), fsgid = r.I32();
            uint count = r.U32();
            var groups = new List<int>();
            for (uint i = 0; i < count && !r.Malformed; i++)
            {
                groups.Add(r.I32());
            }

            credentials = new ProcessCredentials
            {
                RealUserId = ruid, EffectiveUserId = euid, SavedUserId = suid, FileSystemUserId = fsuid,
                RealGroupId = rgid, EffectiveGroupId = egid, SavedGroupId = sgid, FileSystemGroupId = fsgid,
                SupplementaryGroups = groups, EffectiveCapabilities = r.U64(), PermittedCapabilities = r.U64(),
            };
        }

        return new ProcessCreateInfo
        {
            ProcessId = pid,
            ProcessStartKey = key,
            ParentProcessId = parent,
            ParentProcessStartKey = parentKey,
            CreatorProcessId = creator,
            CreatorThreadId = creatorThread,
            ImagePath = image,
            CommandLine = commandLine,
            Arguments = arguments,
            EnvironmentVariables = environment,
            WorkingDirectory = directory,
            UserId = user,
            Credentials = credentials,
            File = r.Identity(),
            CreationStatus = r.Status(),
            HoldDeadline = r.I64(),
        };
    }

    public static void Write(ref RecordWriter w, in ImageLoadInfo info)
    {
        w.I32(info.ProcessId);
        w.I64(info.ProcessStartKey);
        w.String(info.ImagePath);
        w.Identity(info.File);
        w.I32((int)info.Kind);
        w.I32((int)info.FileType);
    }

    public static ImageLoadInfo ReadImageLoad(ref RecordReader r) => new()
    {
        ProcessId = r.I32(),
        ProcessStartKey = r.I64(),
        ImagePath = r.Text(),
        File = r.Identity(),
        Kind = r.Enum<ImageLoadKind>(),
        FileType = r.Enum<FileObjectType>(),
    };

    public static void Write(ref RecordWriter w, in RegistrationFaultInfo fault)
    {
        w.I64(fault.Registration.Value);
        w.String(fault.RegistrationName);
        w.I32((int)fault.Kind);
        w.String(fault.Operation);
        w.String(fault.Reason);
        w.I32((int)fault.AppliedVerdict);
        w.I32(fault.ConsecutiveFaults);
        w.Bool(fault.Disabled);
    }

    public static RegistrationFaultInfo ReadFault(ref RecordReader r) => new()
    {
        Registration = new CallbackCookie(r.I64()),
        RegistrationName = r.Text(),
        Kind = r.Enum<RegistrationFaultKind>(),
        Operation = r.Text(),
        Reason = r.Text(),
        AppliedVerdict = r.Enum<TimeoutVerdict>(),
        ConsecutiveFaults = r.I32(),
        Disabled = r.Bool(),
    };

    public static void WriteList(ref RecordWriter w, IReadOnlyList<string>? list)
    {
        w.U32((uint)(list?.Count ?? 0));
        if (list is null)
        {
            return;
        }

        for (int i = 0; i < list.Count; i++)
        {
            w.String(list[i] ?? "");
        }
    }

    public static void WriteMap(ref RecordWriter w, IReadOnlyDictionary<string, string> map)
    {
        w.U32((uint)map.Count);
        foreach (KeyValuePair<string, string> pair in map)
        {
            w.String(pair.Key);
            w.String(pair.Value);
        }
    }

    /// <summary>A callback's exception, as the kernel reports it for an in-kernel one.</summary>
    public static void WriteThrew(ref RecordWriter w, Exception e)
    {
        w.U8((byte)CallbackOutcome.Threw);
        w.String(e.GetType().Name);
        w.String(e.Message.Length > 1024 ? e.Message[..1024] : e.Message);
    }
}

/// <summary>
/// A driver callback that threw in its host, or a host that failed while the kernel waited: thrown by the kernel's proxy
/// callback so that the kernel contains it as it contains an in-kernel callback that threw (a driver-fault line, the
/// registration's timeout verdict, its count of faults).
/// </summary>
internal sealed class IsolatedCallbackException : Exception
{
    public IsolatedCallbackException(string message)
        : base(message)
    {
    }

    public IsolatedCallbackException()
    {
    }

    public IsolatedCallbackException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
