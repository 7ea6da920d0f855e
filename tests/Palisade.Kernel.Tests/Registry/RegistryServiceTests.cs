// The configuration manager as the kernel's registry store: registry system services reach the hive through the
// registry callbacks, and what a callback blocks never reaches the disk.
using Palisade.Api;
using Palisade.Kernel.Dispatch;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Tests.Registry;

public sealed class RegistryServiceTests : IDisposable
{
    private const string Key = @"\Registry\Machine\Software\Vendor";
    private readonly TempHive _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void A_value_set_through_the_registry_service_is_in_the_hive_after_the_kernel_stops()
    {
        using (PalisadeKernel kernel = Boot())
        {
            Assert.Equal(Status.Success, Call(kernel, SystemService.CreateKey, Request(RegistryOperation.CreateKey)));
            RegistryRequest set = Request(RegistryOperation.SetValue);
            set.ValueName = "Mode";
            set.ValueType = RegistryValueType.DWord;
            set.Data = RegistryData.FromDWord(3);
            Assert.Equal(Status.Success, Call(kernel, SystemService.SetValueKey, set));
        }

        using RegistryManager reopened = OpenHive();
        Assert.Equal(Status.Success, reopened.QueryValue(Key, "Mode", out _, out ReadOnlyMemory<byte> data));
        Assert.Equal(RegistryData.FromDWord(3), data.ToArray());
    }

    [Fact]
    public void A_set_blocked_by_a_registry_callback_never_reaches_the_hive()
    {
        using (PalisadeKernel kernel = Boot())
        {
            Call(kernel, SystemService.CreateKey, Request(RegistryOperation.CreateKey));
            StartDriver(kernel, context => context.Registry.Register(
                (ref RegistryNotification n) => n.NotifyClass == RegistryNotifyClass.PreSetValue ? Status.AccessDenied : Status.Success,
                "320000",
                out _));
            RegistryRequest set = Request(RegistryOperation.SetValue);
            set.ValueName = "Mode";
            set.ValueType = RegistryValueType.DWord;
            set.Data = RegistryData.FromDWord(3);

            Assert.Equal(Status.AccessDenied, Call(kernel, SystemService.SetValueKey, set));
        }

        using RegistryManager reopened = OpenHive();
        Assert.Equal(Status.ObjectNameNotFound, reopened.QueryValue(Key, "Mode", out _, out _));
    }

    [Fact]
    public void Create_key_through_the_service_says_whether_it_created_the_key()
    {
        using PalisadeKernel kernel = Boot();
        RegistryRequest first = Request(RegistryOperation.CreateKey);
        RegistryRequest second = Request(RegistryOperation.CreateKey);

        Call(kernel, SystemService.CreateKey, first);
        Call(kernel, SystemService.CreateKey, second);

        Assert.True(first.Created);
        Assert.False(second.Created);
    }

    [Fact]
    public void Querying_through_the_service_returns_the_type_and_data()
    {
        using PalisadeKernel kernel = Boot();
        Call(kernel, SystemService.CreateKey, Request(RegistryOperation.CreateKey));
        RegistryRequest set = Request(RegistryOperation.SetValue);
        set.ValueType = RegistryValueType.String;
        set.Data = RegistryData.FromString("default");
        Call(kernel, SystemService.SetValueKey, set);
        RegistryRequest query = Request(RegistryOperation.QueryValue);

        Assert.Equal(Status.Success, Call(kernel, SystemService.QueryValueKey, query));

        Assert.Equal(RegistryValueType.String, query.ResultType);
        Assert.Equal("default", RegistryData.ToString(query.ResultData.Span));
    }

    [Fact]
    public void Enumerating_values_through_the_service_returns_their_names()
    {
        using PalisadeKernel kernel = Boot();
        Call(kernel, SystemService.CreateKey, Request(RegistryOperation.CreateKey));
        foreach (string name in new[] { "b", "a" })
        {
            RegistryRequest set = Request(RegistryOperation.SetValue);
            set.ValueName = name;
            set.ValueType = RegistryValueType.Binary;
            Call(kernel, SystemService.SetValueKey, set);
        }

        RegistryRequest enumerate = Request(RegistryOperation.EnumerateValue);

        Assert.Equal(Status.Success, Call(kernel, SystemService.EnumerateValueKey, enumerate));
        Assert.Equal(["a", "b"], enumerate.Names);
    }

    [Fact]
    public void A_rename_without_a_new_name_is_refused_with_ObjectNameInvalid()
    {
        using RegistryManager registry = RegistryManager.CreateVolatile();
        registry.CreateKey(Key, out _);

        Assert.Equal(Status.ObjectNameInvalid, registry.Perform(Request(RegistryOperation.RenameKey)));
    }

    private static RegistryRequest Request(RegistryOperation operation)
    {
        var request = new RegistryRequest();
        request.Reset(operation, Key);
        return request;
    }

    private static Status Call(PalisadeKernel kernel, SystemService service, RegistryRequest request)
    {
        var frame = new ServiceFrame { ProcessId = 100, Registry = request };
        return kernel.SystemCall(service, ref frame);
    }

    private static void StartDriver(PalisadeKernel kernel, Func<IDriverContext, Status> load)
    {
        var record = new DriverObject("hive-test", "tests", "1.0", "", "");
        Assert.Equal(Status.Success, kernel.StartDriver(record, new LambdaDriver(load), new Dictionary<string, string>()));
    }

    private PalisadeKernel Boot() => new(new KernelOptions(KernelFlavor.Protected, _temp.Directory), OpenHive());

    private RegistryManager OpenHive()
    {
        Assert.Equal(Status.Success, RegistryManager.Open(_temp.Path, null, out RegistryManager? registry));
        return registry!;
    }
}
