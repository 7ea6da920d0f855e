// A real kernel booted in-process with one sample driver loaded through StartDriver, real files under a temporary
// folder, and helpers that issue the same system services a guest's open, exec, kill or registry write would.
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Palisade.Api;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Io;
using Palisade.Kernel.Registry;

// The kernel, and so these tests, run on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Palisade.Drivers.Tests;

/// <summary>One driver event from the kernel's event stream.</summary>
internal sealed record DriverEvent(string Driver, string Kind, string Message, int ProcessId, string? Path);

internal sealed class DriverHarness : IDisposable
{
    private readonly MemoryStream _events = new();

    public DriverHarness(IRegistryStore? registry = null)
    {
        Home = Directory.CreateTempSubdirectory("palisade-drivers-").FullName;
        Kernel = new Palisade.Kernel.PalisadeKernel(new Palisade.Kernel.KernelOptions(Palisade.Kernel.KernelFlavor.Protected, Path.Combine(Home, "kernel"), null, _events), registry);
        Files = Path.Combine(Home, "files");
        Directory.CreateDirectory(Files);
    }

    public Palisade.Kernel.PalisadeKernel Kernel { get; }

    /// <summary>The temporary folder; removed with the harness.</summary>
    public string Home { get; }

    /// <summary>A folder for the test's files.</summary>
    public string Files { get; }

    /// <summary>Starts a driver with parameters; returns the status of its Load.</summary>
    public Status Start(IDriver driver, string name, params (string Key, string Value)[] parameters)
    {
        var p = new Dictionary<string, string>();
        foreach ((string k, string v) in parameters)
        {
            p[k] = v;
        }

        return Kernel.StartDriver(new DriverObject(name, "tests", "1.0", "", ""), driver, p);
    }

    public string WriteFile(string name, ReadOnlySpan<byte> content)
    {
        string path = Path.Combine(Files, name);
        File.WriteAllBytes(path, content.ToArray());
        return path;
    }

    public string WriteFile(string name, string content) => WriteFile(name, System.Text.Encoding.ASCII.GetBytes(content));

    public static FileIdentity IdentityOf(string path) => TestFiles.IdentityOf(path);

    /// <summary>Opens a real file through the filter manager, as a guest's open would.</summary>
    public Status Open(string path, FileAccessRights access = FileAccessRights.Read, CreateDisposition disposition = CreateDisposition.Open, int pid = 100)
    {
        var fs = new KernelFileSystem
        {
            Access = (access & (FileAccessRights.Write | FileAccessRights.Append)) == 0 ? FileAccess.Read
                : (access & (FileAccessRights.Read | FileAccessRights.Execute)) != 0 ? FileAccess.ReadWrite : FileAccess.Write,
        };
        var frame = new ServiceFrame
        {
            ProcessId = pid,
            // As the host does, a pre-create sees the identity of the file that exists at the path, if any.
            File = new FileOperation
            {
                Kind = FileOperationKind.Create, Path = path, Access = access, Disposition = disposition, RequesterProcessId = pid,
                File = Path.Exists(path) ? IdentityOf(path) : default, IsDirectory = Directory.Exists(path),
            },
            FilePerformer = fs,
        };
        Status s = Kernel.SystemCall(SystemService.CreateFile, ref frame);
        fs.Opened?.Dispose();
        return s;
    }

    /// <summary>The release of a description written through: cleanup callbacks may read the file, as under a host.</summary>
    public Status Cleanup(string path, int pid = 100)
    {
        using SafeFileHandle reader = File.OpenHandle(path);
        var frame = new ServiceFrame
        {
            ProcessId = pid,
            File = new FileOperation { Kind = FileOperationKind.Cleanup, Path = path, File = IdentityOf(path), RequesterProcessId = pid },
            FilePerformer = new ReleasedFile(reader),
        };
        return Kernel.SystemCall(SystemService.CleanupFile, ref frame);
    }

    public Status Delete(string path, int pid = 100) =>
        FileService(SystemService.DeleteFile, new FileOperation { Kind = FileOperationKind.Delete, Path = path, File = IdentityOf(path), RequesterProcessId = pid }, pid);

    public Status Rename(string path, string newPath, int pid = 100) =>
        FileService(SystemService.RenameFile, new FileOperation { Kind = FileOperationKind.Rename, Path = path, NewPath = newPath, File = IdentityOf(path), RequesterProcessId = pid }, pid);

    public Status Truncate(string path, long size, int pid = 100) =>
        FileService(SystemService.SetInformationFile, new FileOperation
        {
            Kind = FileOperationKind.SetInformation, Path = path, File = IdentityOf(path), RequesterProcessId = pid,
            InformationClass = FileInformationClass.Size, InformationValue = size,
        }, pid);

    private Status FileService(SystemService service, FileOperation op, int pid)
    {
        var frame = new ServiceFrame { ProcessId = pid, File = op, FilePerformer = new HostFileSystem() };
        return Kernel.SystemCall(service, ref frame);
    }

    /// <summary>Starts a program image in a process, as an exec would; returns the process-create verdict.</summary>
    public Status Exec(int pid, string image, FileIdentity? file = null, int parent = 1)
    {
        var frame = new ServiceFrame
        {
            ProcessId = pid,
            Create = new ProcessCreateInfo
            {
                ProcessId = pid, ParentProcessId = parent, CreatorProcessId = pid, ImagePath = image, CommandLine = image,
                File = file ?? (File.Exists(image) ? IdentityOf(image) : default),
            },
        };
        return Kernel.SystemCall(SystemService.CreateProcess, ref frame);
    }

    /// <summary>Forks <paramref name="parent"/> into <paramref name="child"/>.</summary>
    public Status Fork(int parent, int child)
    {
        var frame = new ServiceFrame { ProcessId = parent, ThreadId = parent, TargetProcessId = child };
        return Kernel.SystemCall(SystemService.ForkProcess, ref frame);
    }

    public Status ExitProcess(int pid)
    {
        var frame = new ServiceFrame { TargetProcessId = pid };
        return Kernel.SystemCall(SystemService.ExitProcess, ref frame);
    }

    /// <summary>Opens a process for the rights a signal, ptrace or process_vm_writev needs.</summary>
    public Status OpenProcess(int requester, int target, ProcessAccessRights desired, out ProcessAccessRights granted)
    {
        var frame = new ServiceFrame { ProcessId = requester, TargetProcessId = target, DesiredAccess = desired };
        Status s = Kernel.SystemCall(SystemService.OpenProcess, ref frame);
        granted = frame.GrantedAccess;
        return s;
    }

    public Status Registry(int pid, RegistryOperation operation, string key, string? value = null, string? newName = null)
    {
        var request = new RegistryRequest();
        request.Reset(operation, key);
        request.ValueName = value;
        request.NewName = newName;
        if (operation == RegistryOperation.SetValue)
        {
            request.ValueType = RegistryValueType.DWord;
            request.Data = new byte[] { 1, 0, 0, 0 };
        }

        var frame = new ServiceFrame { ProcessId = pid, Registry = request };
        return Kernel.SystemCall(SystemService.SetValueKey, ref frame);
    }

    /// <summary>Classifies one network operation the way the host asks before a connect, bind, listen or accept.</summary>
    public Status Classify(NetworkLayer layer, NetworkProtocol protocol, string? remote, int remotePort, int localPort = 0, string app = "/usr/bin/curl", int uid = 1000)
    {
        var frame = new ServiceFrame
        {
            Network = new NetworkClassifyContext
            {
                Layer = layer, Protocol = protocol, RemoteAddress = remote is null ? null : System.Net.IPAddress.Parse(remote),
                RemotePort = remotePort, LocalPort = localPort, ApplicationPath = app, UserId = uid, ProcessId = 42,
            },
        };
        return Kernel.SystemCall(SystemService.NetworkClassify, ref frame);
    }

    /// <summary>The events drivers reported so far.</summary>
    public List<DriverEvent> Events()
    {
        var list = new List<DriverEvent>();
        Kernel.Events.Flush();
        byte[] bytes;
        lock (_events)
        {
            bytes = _events.ToArray();
        }

        foreach (string line in System.Text.Encoding.UTF8.GetString(bytes).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using JsonDocument doc = JsonDocument.Parse(line);
            JsonElement e = doc.RootElement;
            if (e.GetProperty("type").GetString() != "driver")
            {
                continue;
            }

            list.Add(new DriverEvent(e.GetProperty("driver").GetString()!, e.GetProperty("kind").GetString()!, e.GetProperty("message").GetString()!,
                e.GetProperty("pid").GetInt32(), e.TryGetProperty("path", out JsonElement p) ? p.GetString() : null));
        }

        return list;
    }

    public List<DriverEvent> Events(string kind) => Events().FindAll(e => e.Kind == kind);

    /// <summary>Waits until the driver has reported an event of <paramref name="kind"/> (parameter changes are
    /// delivered on a kernel worker thread); fails after a minute.</summary>
    public DriverEvent WaitForEvent(string kind)
    {
        DriverEvent? found = null;
        Assert.True(SpinWait.SpinUntil(() => (found = Events(kind).FirstOrDefault()) is not null, TimeSpan.FromMinutes(1)), "no " + kind + " event");
        return found!;
    }

    /// <summary>Sets a string value of a driver's Parameters key, as <c>palisade reg set</c> does: a registry system
    /// service of the administrator, decided by the registry callbacks.</summary>
    public Status SetParameter(string driver, string name, string value)
    {
        var registry = new RegistryClient(Kernel, processId: 0);
        Status s = registry.CreateKey(RegistryClient.ParametersKey(driver), out _);
        return s.IsError ? s : registry.SetValue(RegistryClient.ParametersKey(driver), name, RegistryValueType.String, RegistryClient.EncodeString(value));
    }

    public void Dispose()
    {
        Kernel.Dispose();
        Directory.Delete(Home, recursive: true);
    }
}

/// <summary>Performs file operations on the real host file system once the filters let them pass.</summary>
internal sealed class HostFileSystem : IFileSystemPerformer
{
    public Status Perform(ref FileOperation operation)
    {
        try
        {
            switch (operation.Kind)
            {
                case FileOperationKind.Cleanup:
                    return Status.Success;
                case FileOperationKind.Delete:
                    File.Delete(operation.Path);
                    return Status.Success;
                case FileOperationKind.Rename:
                    File.Move(operation.Path, operation.NewPath!, overwrite: true);
                    return Status.Success;
                case FileOperationKind.SetInformation when operation.InformationClass == FileInformationClass.Size:
                    using (SafeFileHandle h = File.OpenHandle(operation.Path, FileMode.Open, FileAccess.Write))
                    {
                        RandomAccess.SetLength(h, operation.InformationValue);
                    }

                    return Status.Success;
                default:
                    return Status.NotSupported;
            }
        }
        catch (FileNotFoundException)
        {
            return Status.ObjectNameNotFound;
        }
        catch (IOException)
        {
            return Status.Unsuccessful;
        }
    }

    public void CancelCreate(ref FileOperation operation)
    {
    }

    public Status ReadOpened(long offset, Span<byte> buffer, out int bytesRead)
    {
        bytesRead = 0;
        return Status.InvalidDeviceState;
    }

    public Status QueryOpened(Palisade.Kernel.Processes.ProcessTable guests, out FileState state)
    {
        state = default;
        return Status.InvalidDeviceState;
    }
}

/// <summary>A cleanup's file, read through a descriptor of the harness's own, as a host's cleanup reads it.</summary>
internal sealed class ReleasedFile(SafeFileHandle reader) : IFileSystemPerformer
{
    public Status Perform(ref FileOperation operation) => Status.Success;

    public void CancelCreate(ref FileOperation operation)
    {
    }

    public Status ReadOpened(long offset, Span<byte> buffer, out int bytesRead)
    {
        bytesRead = RandomAccess.Read(reader, buffer, offset);
        return Status.Success;
    }

    public Status QueryOpened(Palisade.Kernel.Processes.ProcessTable guests, out FileState state) =>
        Palisade.Kernel.Io.FileStateQuery.Of(reader, guests, out state);
}
