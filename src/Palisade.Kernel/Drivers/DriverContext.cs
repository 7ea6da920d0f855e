using Palisade.Api;
using Palisade.Kernel.Callbacks;

namespace Palisade.Kernel.Drivers;

/// <summary>
/// The kernel's implementation of <see cref="IDriverContext"/> for one driver. Every registration made through it is
/// owned by the driver, so that it can be removed when the driver unloads. After unload the context refuses
/// every call with <see cref="Status.InvalidDeviceState"/>.
/// </summary>
internal sealed class DriverContext : IDriverContext
{
    private readonly PalisadeKernel _kernel;
    private volatile bool _valid = true;

    public DriverContext(PalisadeKernel kernel, DriverObject driver, IReadOnlyDictionary<string, string> parameters)
    {
        _kernel = kernel;
        Driver = driver;
        Parameters = parameters;
        Processes = new ProcessFacade(this);
        Objects = new ObjectFacade(this);
        Registry = new RegistryFacade(this);
        Files = new FilesFacade(this);
        Network = new NetworkFacade(this);
        SecurityCenter = new SecurityCenterFacade(this);
    }

    public DriverObject Driver { get; }

    public string DriverName => Driver.Name;

    public Version ApiVersion => PalisadeKernel.ApiVersion;

    public IReadOnlyDictionary<string, string> Parameters { get; }

    public IProcessCallbacks Processes { get; }

    public IObjectCallbacks Objects { get; }

    public IRegistryCallbacks Registry { get; }

    public IFilterManager Files { get; }

    public INetworkFilterEngine Network { get; }

    public ISecurityCenter SecurityCenter { get; }

    internal PalisadeKernel Kernel => _kernel;

    internal bool Valid => _valid;

    internal void Invalidate() => _valid = false;

    public Status ReportEvent(string kind, string message, int processId, string? path)
    {
        if (!_valid)
        {
            return Status.InvalidDeviceState;
        }

        if (string.IsNullOrEmpty(kind) || kind.Length > 64 || message is null || message.Length > 4096 || processId < 0)
        {
            return Status.InvalidParameter;
        }

        _kernel.Events.WriteDriverEvent(Driver.Name, kind, message, processId, path);
        return Status.Success;
    }

    private static Status Add<TDelegate>(DriverContext c, CallbackTable<CallbackRegistration<TDelegate>> table, TDelegate? callback, out CallbackCookie cookie)
        where TDelegate : Delegate
    {
        cookie = default;
        if (!c._valid)
        {
            return Status.InvalidDeviceState;
        }

        if (callback is null)
        {
            return Status.InvalidParameter;
        }

        var r = new CallbackRegistration<TDelegate>(c.Driver, callback);
        Status s = table.Add(r);
        if (s.IsSuccess)
        {
            cookie = r.Cookie;
        }

        return s;
    }

    private sealed class ProcessFacade(DriverContext c) : IProcessCallbacks
    {
        public Status RegisterProcessCreate(ProcessCreateCallback callback, out CallbackCookie cookie) =>
            Add(c, c._kernel.Processes.Create, callback, out cookie);

        public Status RegisterProcessExit(ProcessExitCallback callback, out CallbackCookie cookie) =>
            Add(c, c._kernel.Processes.Exit, callback, out cookie);

        public Status RegisterThreadCreate(ThreadCallback callback, out CallbackCookie cookie) =>
            Add(c, c._kernel.Processes.ThreadCreate, callback, out cookie);

        public Status RegisterThreadExit(ThreadCallback callback, out CallbackCookie cookie) =>
            Add(c, c._kernel.Processes.ThreadExit, callback, out cookie);

        public Status RegisterImageLoad(ImageLoadCallback callback, out CallbackCookie cookie) =>
            Add(c, c._kernel.Processes.ImageLoad, callback, out cookie);

        public Status Unregister(CallbackCookie cookie)
        {
            var p = c._kernel.Processes;
            DriverObject d = c.Driver;
            Status s = p.Create.Remove(cookie, d);
            if (s.IsSuccess)
            {
                return s;
            }

            s = p.Exit.Remove(cookie, d);
            if (s.IsSuccess)
            {
                return s;
            }

            s = p.ThreadCreate.Remove(cookie, d);
            if (s.IsSuccess)
            {
                return s;
            }

            s = p.ThreadExit.Remove(cookie, d);
            return s.IsSuccess ? s : p.ImageLoad.Remove(cookie, d);
        }
    }

    private sealed class ObjectFacade(DriverContext c) : IObjectCallbacks
    {
        public Status Register(ObjectCallbackRegistration registration, out CallbackCookie cookie)
        {
            cookie = default;
            if (!c._valid)
            {
                return Status.InvalidDeviceState;
            }

            if (registration is null || (registration.PreOperation is null && registration.PostOperation is null)
                || (registration.ObjectTypes & (ObjectTypes.Process | ObjectTypes.Thread)) == 0
                || (registration.ObjectTypes & ~(ObjectTypes.Process | ObjectTypes.Thread)) != 0
                || (registration.Operations & (HandleOperations.Create | HandleOperations.Duplicate)) == 0
                || (registration.Operations & ~(HandleOperations.Create | HandleOperations.Duplicate)) != 0)
            {
                return Status.InvalidParameter;
            }

            if (!Altitude.TryParse(registration.Altitude, out decimal altitude))
            {
                return Status.InvalidAltitude;
            }

            var entry = new Objects.ObjectCallbackEntry(c.Driver, altitude, registration);
            Status s = c._kernel.Objects.Callbacks.Add(entry);
            if (s.IsSuccess)
            {
                cookie = entry.Cookie;
            }

            return s;
        }

        public Status Unregister(CallbackCookie cookie) => c._kernel.Objects.Callbacks.Remove(cookie, c.Driver);
    }

    private sealed class RegistryFacade(DriverContext c) : IRegistryCallbacks
    {
        public Status Register(RegistryCallback callback, string altitude, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.RegistryCallbacks.Register(c.Driver, callback, altitude, out cookie) : Status.InvalidDeviceState;
        }

        public Status Unregister(CallbackCookie cookie) => c._kernel.RegistryCallbacks.Callbacks.Remove(cookie, c.Driver);
    }

    private sealed class FilesFacade(DriverContext c) : IFilterManager
    {
        public Status RegisterFilter(FilterRegistration registration, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.Files.Register(c.Driver, registration, out cookie) : Status.InvalidDeviceState;
        }

        public Status UnregisterFilter(CallbackCookie cookie) => c._kernel.Files.Filters.Remove(cookie, c.Driver);

        public Status SetFileContext(CallbackCookie cookie, FileIdentity file, object context)
        {
            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            if (f is null)
            {
                return Status.InvalidHandle;
            }

            if (file.IsNone || context is null)
            {
                return Status.InvalidParameter;
            }

            f.Contexts[file] = context;
            return Status.Success;
        }

        public Status GetFileContext(CallbackCookie cookie, FileIdentity file, out object? context)
        {
            context = null;
            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            if (f is null)
            {
                return Status.InvalidHandle;
            }

            return f.Contexts.TryGetValue(file, out context) ? Status.Success : Status.NotFound;
        }

        public Status DeleteFileContext(CallbackCookie cookie, FileIdentity file)
        {
            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            if (f is null)
            {
                return Status.InvalidHandle;
            }

            return f.Contexts.TryRemove(file, out _) ? Status.Success : Status.NotFound;
        }

        public Status ReadFile(CallbackCookie cookie, FileIdentity file, long offset, Span<byte> buffer, out int bytesRead)
        {
            bytesRead = 0;
            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            return f is null ? Status.InvalidHandle : Io.FilterManager.ReadOpened(f, file, offset, buffer, out bytesRead);
        }

        public Status OpenFile(CallbackCookie cookie, string path, FileAccess access, out Stream? stream) =>
            OpenFile(cookie, path, access, out stream, out _);

        public Status OpenFile(CallbackCookie cookie, string path, FileAccess access, out Stream? stream, out FileIdentity file)
        {
            stream = null;
            file = default;
            Status s = Below(cookie, out decimal below);
            if (s.IsError)
            {
                return s;
            }

            if (!IsAbsolute(path) || (access & FileAccess.ReadWrite) == 0 || (access & ~FileAccess.ReadWrite) != 0)
            {
                return Status.InvalidParameter;
            }

            var fs = new Io.KernelFileSystem { Access = access };
            var op = new FileOperation
            {
                Kind = FileOperationKind.Create,
                Path = path,
                Access = ((access & FileAccess.Read) != 0 ? FileAccessRights.Read : 0) | ((access & FileAccess.Write) != 0 ? FileAccessRights.Write : 0),
                Disposition = CreateDisposition.Open,
            };
            s = c._kernel.Files.Dispatch(ref op, fs, below, record: null);
            if (s.IsError || fs.Opened is null)
            {
                fs.Opened?.Dispose();
                return s.IsError ? s : Status.Unsuccessful;
            }

            stream = new FileStream(fs.Opened, access, bufferSize: 0);
            file = op.File;
            return Status.Success;
        }

        public Status RenameFile(CallbackCookie cookie, string path, string newPath)
        {
            if (!IsAbsolute(path) || !IsAbsolute(newPath))
            {
                return Below(cookie, out _) is { IsError: true } refused ? refused : Status.InvalidParameter;
            }

            return Perform(cookie, new FileOperation { Kind = FileOperationKind.Rename, Path = path, NewPath = newPath });
        }

        public Status DeleteFile(CallbackCookie cookie, string path)
        {
            if (!IsAbsolute(path))
            {
                return Below(cookie, out _) is { IsError: true } refused ? refused : Status.InvalidParameter;
            }

            return Perform(cookie, new FileOperation { Kind = FileOperationKind.Delete, Path = path });
        }

        public Status SetFileInformation(CallbackCookie cookie, string path, FileInformationClass informationClass, long value)
        {
            bool valid = IsAbsolute(path) && informationClass switch
            {
                FileInformationClass.Size => value >= 0,
                FileInformationClass.Mode => value is >= 0 and <= 0xFFF,
                FileInformationClass.Owner => true,
                _ => false,
            };
            if (!valid)
            {
                return Below(cookie, out _) is { IsError: true } refused ? refused : Status.InvalidParameter;
            }

            return Perform(cookie, new FileOperation
            {
                Kind = FileOperationKind.SetInformation,
                Path = path,
                InformationClass = informationClass,
                InformationValue = value,
            });
        }

        // The filters an own I/O goes to: below the calling filter, or, for I/O on no filter's behalf, all of them.
        private Status Below(CallbackCookie cookie, out decimal below)
        {
            below = decimal.MaxValue;
            if (!c._valid)
            {
                return Status.InvalidDeviceState;
            }

            if (cookie == default)
            {
                return Status.Success;
            }

            Io.Minifilter? f = c._kernel.Files.Filters.Find(cookie, c.Driver);
            if (f is null)
            {
                return Status.InvalidHandle;
            }

            below = f.Altitude;
            return Status.Success;
        }

        private Status Perform(CallbackCookie cookie, FileOperation op)
        {
            Status s = Below(cookie, out decimal below);
            return s.IsError ? s : c._kernel.Files.Dispatch(ref op, new Io.KernelFileSystem(), below, record: null);
        }

        private static bool IsAbsolute(string? path) => !string.IsNullOrEmpty(path) && path[0] == '/';
    }

    private sealed class NetworkFacade(DriverContext c) : INetworkFilterEngine
    {
        public Status AddSublayer(string name, ushort weight, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.Network.AddSublayer(c.Driver, name, weight, out cookie) : Status.InvalidDeviceState;
        }

        public Status DeleteSublayer(CallbackCookie cookie) => c._kernel.Network.DeleteSublayer(c.Driver, cookie);

        public Status RegisterCallout(string name, CalloutClassifyCallback classify, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.Network.RegisterCallout(c.Driver, name, classify, out cookie) : Status.InvalidDeviceState;
        }

        public Status UnregisterCallout(CallbackCookie cookie) => c._kernel.Network.UnregisterCallout(c.Driver, cookie);

        public Status AddFilter(NetworkFilter filter, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.Network.AddFilter(c.Driver, filter, out cookie) : Status.InvalidDeviceState;
        }

        public Status DeleteFilter(CallbackCookie cookie) => c._kernel.Network.DeleteFilter(c.Driver, cookie);
    }

    private sealed class SecurityCenterFacade(DriverContext c) : ISecurityCenter
    {
        public Status RegisterProduct(SecurityProductKind kind, string displayName, out CallbackCookie cookie)
        {
            cookie = default;
            return c._valid ? c._kernel.SecurityCenter.Register(c.Driver, kind, displayName, out cookie) : Status.InvalidDeviceState;
        }

        public Status ReportState(CallbackCookie cookie, ProductState state) => c._kernel.SecurityCenter.ReportState(c.Driver, cookie, state);

        public Status UnregisterProduct(CallbackCookie cookie) => c._kernel.SecurityCenter.Products.Remove(cookie, c.Driver);

        public Status ListProducts(out IReadOnlyList<SecurityProduct> products)
        {
            products = c._kernel.SecurityCenter.List();
            return Status.Success;
        }
    }
}
