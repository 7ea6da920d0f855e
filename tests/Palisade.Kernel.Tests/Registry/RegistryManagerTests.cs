// The registry's operations and their statuses, on a volatile registry (persistence has its own tests).
using Palisade.Api;
using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Tests.Registry;

public sealed class RegistryManagerTests : IDisposable
{
    private const string Software = @"\Registry\Machine\Software";
    private readonly RegistryManager _registry = RegistryManager.CreateVolatile();

    public void Dispose() => _registry.Dispose();

    [Fact]
    public void Create_key_reports_a_new_key_then_an_existing_one()
    {
        Assert.Equal(Status.Success, _registry.CreateKey(Software, out KeyDisposition first));
        Assert.Equal(Status.Success, _registry.CreateKey(Software, out KeyDisposition second));

        Assert.Equal(KeyDisposition.CreatedNewKey, first);
        Assert.Equal(KeyDisposition.OpenedExistingKey, second);
    }

    [Fact]
    public void Create_key_creates_the_missing_parent_keys()
    {
        Assert.Equal(Status.Success, _registry.CreateKey(Software + @"\Vendor\Product\Settings", out _));

        Assert.Equal(Status.Success, _registry.OpenKey(Software + @"\Vendor\Product"));
    }

    [Fact]
    public void Key_names_match_without_regard_to_case_and_keep_the_case_they_were_created_with()
    {
        _registry.CreateKey(Software + @"\Vendor", out _);
        var names = new List<string>();

        Assert.Equal(Status.Success, _registry.OpenKey(@"\REGISTRY\machine\SOFTWARE\vendor"));
        _registry.EnumerateSubkeys(Software, names);
        Assert.Equal(["Vendor"], names);
    }

    [Fact]
    public void Opening_a_missing_key_returns_ObjectNameNotFound()
    {
        Assert.Equal(Status.ObjectNameNotFound, _registry.OpenKey(Software));
    }

    [Fact]
    public void Opening_a_key_under_a_missing_parent_returns_ObjectPathNotFound()
    {
        Assert.Equal(Status.ObjectPathNotFound, _registry.OpenKey(Software + @"\Vendor"));
    }

    [Theory]
    [InlineData("")]
    [InlineData(@"Registry\Machine")]
    [InlineData(@"\Other\Machine")]
    [InlineData(@"\Registry\\Machine")]
    [InlineData(@"\Registry\Machine\")]
    [InlineData("\\Registry\\Mach\0ine")]
    public void A_malformed_path_is_refused_with_ObjectNameInvalid(string path)
    {
        Assert.Equal(Status.ObjectNameInvalid, _registry.CreateKey(path, out _));
    }

    [Fact]
    public void A_key_name_of_255_characters_is_accepted()
    {
        Assert.Equal(Status.Success, _registry.CreateKey(Software + @"\" + new string('k', 255), out _));
    }

    [Fact]
    public void A_key_name_longer_than_255_characters_is_refused()
    {
        Assert.Equal(Status.ObjectNameInvalid, _registry.CreateKey(Software + @"\" + new string('k', 256), out _));
    }

    [Fact]
    public void A_key_512_levels_below_the_root_is_accepted()
    {
        string path = @"\Registry" + string.Concat(Enumerable.Repeat(@"\k", 512));

        Assert.Equal(Status.Success, _registry.CreateKey(path, out _));
    }

    [Fact]
    public void A_key_deeper_than_512_levels_is_refused()
    {
        string path = @"\Registry" + string.Concat(Enumerable.Repeat(@"\k", 513));

        Assert.Equal(Status.ObjectNameInvalid, _registry.CreateKey(path, out _));
    }

    [Fact]
    public void Deleting_a_key_that_has_subkeys_returns_KeyHasChildren()
    {
        _registry.CreateKey(Software + @"\Vendor", out _);

        Assert.Equal(Status.KeyHasChildren, _registry.DeleteKey(Software));
    }

    [Fact]
    public void Deleting_a_key_removes_it_with_its_values()
    {
        _registry.CreateKey(Software, out _);
        _registry.SetValue(Software, "Name", RegistryValueType.String, RegistryData.FromString("x"));

        Assert.Equal(Status.Success, _registry.DeleteKey(Software));
        Assert.Equal(Status.ObjectNameNotFound, _registry.OpenKey(Software));
        _registry.CreateKey(Software, out _);
        Assert.Equal(Status.ObjectNameNotFound, _registry.QueryValue(Software, "Name", out _, out _));
    }

    [Theory]
    [InlineData(@"\Registry")]
    [InlineData(@"\Registry\Machine")]
    [InlineData(@"\Registry\User")]
    public void A_predefined_key_cannot_be_deleted(string path)
    {
        Assert.Equal(Status.CannotDelete, _registry.DeleteKey(path));
    }

    [Fact]
    public void A_predefined_key_cannot_be_renamed()
    {
        Assert.Equal(Status.AccessDenied, _registry.RenameKey(@"\Registry\Machine", "Other"));
    }

    [Theory]
    [InlineData(RegistryValueType.None, new byte[0])]
    [InlineData(RegistryValueType.String, new byte[] { 0x41, 0, 0, 0 })]
    [InlineData(RegistryValueType.ExpandString, new byte[] { 0x25, 0, 0, 0 })]
    [InlineData(RegistryValueType.Binary, new byte[] { 1, 2, 3 })]
    [InlineData(RegistryValueType.DWord, new byte[] { 1, 0, 0, 0 })]
    [InlineData(RegistryValueType.QWord, new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 })]
    [InlineData(RegistryValueType.MultiString, new byte[] { 0x41, 0, 0, 0, 0, 0 })]
    public void A_set_value_reads_back_with_its_type_and_data(RegistryValueType type, byte[] data)
    {
        _registry.CreateKey(Software, out _);

        Assert.Equal(Status.Success, _registry.SetValue(Software, "Value", type, data));
        Assert.Equal(Status.Success, _registry.QueryValue(Software, "Value", out RegistryValueType readType, out ReadOnlyMemory<byte> readData));
        Assert.Equal(type, readType);
        Assert.Equal(data, readData.ToArray());
    }

    [Fact]
    public void Overwriting_a_value_replaces_its_data_and_keeps_the_first_spelling_of_its_name()
    {
        _registry.CreateKey(Software, out _);
        _registry.SetValue(Software, "Timeout", RegistryValueType.DWord, RegistryData.FromDWord(1));
        _registry.SetValue(Software, "TIMEOUT", RegistryValueType.QWord, RegistryData.FromQWord(2));
        var values = new List<RegistryValueInfo>();

        _registry.EnumerateValues(Software, values);

        RegistryValueInfo value = Assert.Single(values);
        Assert.Equal("Timeout", value.Name);
        Assert.Equal(RegistryValueType.QWord, value.Type);
        Assert.Equal(RegistryData.FromQWord(2), value.Data.ToArray());
    }

    [Fact]
    public void Value_data_of_exactly_1_MiB_is_accepted()
    {
        _registry.CreateKey(Software, out _);

        Assert.Equal(Status.Success, _registry.SetValue(Software, "Big", RegistryValueType.Binary, new byte[1 << 20]));
    }

    [Fact]
    public void Value_data_over_1_MiB_is_refused_with_InvalidParameter()
    {
        _registry.CreateKey(Software, out _);

        Assert.Equal(Status.InvalidParameter, _registry.SetValue(Software, "Big", RegistryValueType.Binary, new byte[(1 << 20) + 1]));
    }

    [Fact]
    public void A_value_name_longer_than_16383_characters_is_refused()
    {
        _registry.CreateKey(Software, out _);

        Assert.Equal(Status.ObjectNameInvalid, _registry.SetValue(Software, new string('v', 16_384), RegistryValueType.None, []));
    }

    [Theory]
    [InlineData(RegistryValueType.DWord, 3)]
    [InlineData(RegistryValueType.QWord, 4)]
    [InlineData(RegistryValueType.String, 3)]
    [InlineData((RegistryValueType)5, 4)]
    public void Data_that_does_not_fit_its_type_is_refused_with_InvalidParameter(RegistryValueType type, int length)
    {
        _registry.CreateKey(Software, out _);

        Assert.Equal(Status.InvalidParameter, _registry.SetValue(Software, "Value", type, new byte[length]));
    }

    [Fact]
    public void Setting_a_value_of_a_missing_key_returns_ObjectNameNotFound()
    {
        Assert.Equal(Status.ObjectNameNotFound, _registry.SetValue(Software, "Value", RegistryValueType.DWord, RegistryData.FromDWord(1)));
    }

    [Fact]
    public void Querying_a_missing_value_returns_ObjectNameNotFound()
    {
        _registry.CreateKey(Software, out _);

        Assert.Equal(Status.ObjectNameNotFound, _registry.QueryValue(Software, "Missing", out _, out _));
    }

    [Fact]
    public void The_default_value_has_the_empty_name()
    {
        _registry.CreateKey(Software, out _);
        _registry.SetValue(Software, "", RegistryValueType.String, RegistryData.FromString("default"));

        Assert.Equal(Status.Success, _registry.QueryValue(Software, "", out _, out ReadOnlyMemory<byte> data));
        Assert.Equal("default", RegistryData.ToString(data.Span));
    }

    [Fact]
    public void Deleting_a_value_removes_it()
    {
        _registry.CreateKey(Software, out _);
        _registry.SetValue(Software, "Value", RegistryValueType.DWord, RegistryData.FromDWord(7));

        Assert.Equal(Status.Success, _registry.DeleteValue(Software, "VALUE"));
        Assert.Equal(Status.ObjectNameNotFound, _registry.QueryValue(Software, "Value", out _, out _));
    }

    [Fact]
    public void Deleting_a_missing_value_returns_ObjectNameNotFound()
    {
        _registry.CreateKey(Software, out _);

        Assert.Equal(Status.ObjectNameNotFound, _registry.DeleteValue(Software, "Missing"));
    }

    [Fact]
    public void Subkeys_are_enumerated_in_name_order_without_regard_to_case()
    {
        foreach (string name in new[] { "beta", "Alpha", "gamma" })
        {
            _registry.CreateKey(Software + @"\" + name, out _);
        }

        var names = new List<string>();

        Assert.Equal(Status.Success, _registry.EnumerateSubkeys(Software, names));
        Assert.Equal(["Alpha", "beta", "gamma"], names);
    }

    [Fact]
    public void Values_are_enumerated_with_name_type_and_data()
    {
        _registry.CreateKey(Software, out _);
        _registry.SetValue(Software, "b", RegistryValueType.DWord, RegistryData.FromDWord(2));
        _registry.SetValue(Software, "a", RegistryValueType.String, RegistryData.FromString("one"));
        var values = new List<RegistryValueInfo>();

        Assert.Equal(Status.Success, _registry.EnumerateValues(Software, values));

        Assert.Equal(["a", "b"], values.Select(v => v.Name));
        Assert.Equal([RegistryValueType.String, RegistryValueType.DWord], values.Select(v => v.Type));
        Assert.Equal("one", RegistryData.ToString(values[0].Data.Span));
    }

    [Fact]
    public void Renaming_a_key_moves_its_subkeys_and_values()
    {
        _registry.CreateKey(Software + @"\Old\Child", out _);
        _registry.SetValue(Software + @"\Old", "Value", RegistryValueType.DWord, RegistryData.FromDWord(5));

        Assert.Equal(Status.Success, _registry.RenameKey(Software + @"\Old", "New"));

        Assert.Equal(Status.ObjectNameNotFound, _registry.OpenKey(Software + @"\Old"));
        Assert.Equal(Status.Success, _registry.OpenKey(Software + @"\New\Child"));
        Assert.Equal(Status.Success, _registry.QueryValue(Software + @"\New", "Value", out _, out _));
    }

    [Fact]
    public void Renaming_a_key_to_the_name_of_a_sibling_returns_ObjectNameCollision()
    {
        _registry.CreateKey(Software + @"\One", out _);
        _registry.CreateKey(Software + @"\Two", out _);

        Assert.Equal(Status.ObjectNameCollision, _registry.RenameKey(Software + @"\One", "TWO"));
    }

    [Fact]
    public void Renaming_a_key_may_change_only_the_case_of_its_name()
    {
        _registry.CreateKey(Software + @"\vendor", out _);
        var names = new List<string>();

        Assert.Equal(Status.Success, _registry.RenameKey(Software + @"\vendor", "Vendor"));
        _registry.EnumerateSubkeys(Software, names);
        Assert.Equal(["Vendor"], names);
    }

    [Theory]
    [InlineData(@"a\b")]
    [InlineData("")]
    public void Renaming_to_a_name_that_is_not_one_component_is_refused(string newName)
    {
        _registry.CreateKey(Software + @"\Key", out _);

        Assert.Equal(Status.ObjectNameInvalid, _registry.RenameKey(Software + @"\Key", newName));
    }

    [Fact]
    public void Operations_after_dispose_return_InvalidDeviceState()
    {
        _registry.Dispose();

        Assert.Equal(Status.InvalidDeviceState, _registry.CreateKey(Software, out _));
        Assert.Equal(Status.InvalidDeviceState, _registry.OpenKey(Software));
    }

    [Fact]
    public void Concurrent_writers_and_readers_lose_no_write()
    {
        const int Writers = 4;
        const int PerWriter = 500;
        _registry.CreateKey(Software, out _);
        using var start = new Barrier(Writers + 1);
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Status>();
        var threads = new List<Thread>();
        for (int w = 0; w < Writers; w++)
        {
            int writer = w;
            var thread = new Thread(() =>
            {
                start.SignalAndWait();
                for (int i = 0; i < PerWriter; i++)
                {
                    // Failures are collected, not asserted: an exception on this thread would end the test host.
                    string key = Software + @"\W" + writer;
                    Status status = _registry.CreateKey(key, out _);
                    status = status.IsSuccess ? _registry.SetValue(key, "V" + i, RegistryValueType.DWord, RegistryData.FromDWord((uint)i)) : status;
                    status = status.IsSuccess ? _registry.QueryValue(key, "V" + i, out _, out _) : status;
                    if (status.IsError)
                    {
                        failures.Enqueue(status);
                    }
                }
            });
            thread.Start();
            threads.Add(thread);
        }

        start.SignalAndWait();
        threads.ForEach(t => t.Join());

        Assert.Empty(failures);

        for (int w = 0; w < Writers; w++)
        {
            Assert.Equal(Status.Success, _registry.QueryKey(Software + @"\W" + w, out _, out int values));
            Assert.Equal(PerWriter, values);
        }
    }
}
