using System.Text;
using Palisade.Api;
using Palisade.Kernel.Drivers;

namespace Palisade.Kernel.Tests.Drivers;

public sealed class DriverManifestTests
{
    private static bool Parse(string json, out DriverManifest? manifest, out string? error) =>
        DriverManifest.TryParse(Encoding.UTF8.GetBytes(json), out manifest, out error);

    [Fact]
    public void Valid_manifest_is_read_with_every_field()
    {
        Assert.True(Parse(PackageWorkspace.Manifest(), out DriverManifest? manifest, out string? error), error);

        Assert.Equal("sample-driver", manifest!.Name);
        Assert.Equal("Palisade Tests", manifest.Vendor);
        Assert.Equal(new Version(1, 0, 0), manifest.Version);
        Assert.Equal("Palisade.TestDrivers.Sample.dll", manifest.Assembly);
        Assert.Equal(PackageWorkspace.SampleEntryType, manifest.EntryType);
        Assert.Equal(new Version(1, 0), manifest.MinimumApiVersion);
        Assert.Equal([new RequestedAltitude(ApiArea.Files, "320000")], manifest.Altitudes);
    }

    [Fact]
    public void Utf8_byte_order_mark_before_the_manifest_is_accepted()
    {
        byte[] withMark = [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(PackageWorkspace.Manifest())];

        Assert.True(DriverManifest.TryParse(withMark, out _, out string? error), error);
    }

    [Fact]
    public void Missing_property_is_named_in_the_message()
    {
        string json = PackageWorkspace.Manifest().Replace("\"vendor\": \"Palisade Tests\",", string.Empty, StringComparison.Ordinal);

        Assert.False(Parse(json, out _, out string? error));
        Assert.Contains("missing the required property \"vendor\"", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_property_is_refused_so_that_typos_do_not_pass_silently()
    {
        string json = PackageWorkspace.Manifest().Replace("\"entryType\"", "\"entrytype\"", StringComparison.Ordinal);

        Assert.False(Parse(json, out _, out string? error));
        Assert.Contains("unknown property \"entrytype\"", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_json_is_refused_with_the_parser_message()
    {
        Assert.False(Parse("{ \"name\": ", out _, out string? error));
        Assert.StartsWith("manifest.json is not valid JSON", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("1.x")]
    [InlineData("v1.0")]
    [InlineData("1.0.0")]
    public void Minimum_api_version_must_be_major_dot_minor(string version)
    {
        Assert.False(Parse(PackageWorkspace.Manifest(minimumApiVersion: version), out _, out string? error));
        Assert.Contains("\"minimumApiVersion\"", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("-leading-dash")]
    [InlineData("has space")]
    [InlineData("slash/name")]
    public void Driver_name_outside_the_allowed_characters_is_refused(string name)
    {
        Assert.False(Parse(PackageWorkspace.Manifest(name: name), out _, out string? error));
        Assert.Contains("\"name\"", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("lib/Driver.dll")]
    [InlineData("Driver.exe")]
    [InlineData("../Driver.dll")]
    public void Assembly_must_be_a_dll_at_the_package_root(string assembly)
    {
        Assert.False(Parse(PackageWorkspace.Manifest(assembly: assembly), out _, out string? error));
        Assert.Contains("\"assembly\"", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Contoso.Driver, Contoso")]
    [InlineData("Contoso..Driver")]
    [InlineData("Contoso.Driver.")]
    public void Entry_type_must_be_a_plain_full_type_name(string entryType)
    {
        Assert.False(Parse(PackageWorkspace.Manifest(entryType: entryType), out _, out string? error));
        Assert.Contains("\"entryType\"", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("0.0")]
    [InlineData("32x000")]
    [InlineData("1234567890123")]
    [InlineData("320000.")]
    [InlineData("-5")]
    public void Malformed_altitude_is_refused(string altitude)
    {
        string json = PackageWorkspace.Manifest().Replace("\"320000\"", $"\"{altitude}\"", StringComparison.Ordinal);

        Assert.False(Parse(json, out _, out string? error));
        Assert.Contains("\"altitude\"", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Fractional_altitude_is_accepted()
    {
        string json = PackageWorkspace.Manifest().Replace("\"320000\"", "\"320000.5\"", StringComparison.Ordinal);

        Assert.True(Parse(json, out DriverManifest? manifest, out string? error), error);
        Assert.Equal("320000.5", manifest!.Altitudes[0].Altitude);
    }

    [Fact]
    public void Altitude_kind_must_be_an_area_that_takes_altitudes()
    {
        string json = PackageWorkspace.Manifest().Replace("\"files\"", "\"network\"", StringComparison.Ordinal);

        Assert.False(Parse(json, out _, out string? error));
        Assert.Contains("objects, registry and files", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Same_altitude_twice_for_one_kind_is_refused()
    {
        string json = PackageWorkspace.Manifest().Replace(
            "{ \"kind\": \"files\", \"altitude\": \"320000\" }",
            "{ \"kind\": \"files\", \"altitude\": \"320000\" }, { \"kind\": \"files\", \"altitude\": \"320000\" }",
            StringComparison.Ordinal);

        Assert.False(Parse(json, out _, out string? error));
        Assert.Contains("repeats the files altitude 320000", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Same_altitude_for_different_kinds_is_accepted()
    {
        string json = PackageWorkspace.Manifest().Replace(
            "{ \"kind\": \"files\", \"altitude\": \"320000\" }",
            "{ \"kind\": \"files\", \"altitude\": \"320000\" }, { \"kind\": \"registry\", \"altitude\": \"320000\" }",
            StringComparison.Ordinal);

        Assert.True(Parse(json, out DriverManifest? manifest, out string? error), error);
        Assert.Equal(2, manifest!.Altitudes.Count);
    }

    [Fact]
    public void A_manifest_without_hosting_leaves_the_placement_to_the_flavor()
    {
        Assert.True(Parse(PackageWorkspace.Manifest(), out DriverManifest? manifest, out string? error), error);

        Assert.Equal(DriverHosting.Unstated, manifest!.Hosting);
    }

    [Theory]
    [InlineData("isolated", "Isolated")]
    [InlineData("in-kernel", "InKernel")]
    public void Hosting_is_read_from_the_manifest(string hosting, string expected)
    {
        string json = WithHosting("\"" + hosting + "\"");

        Assert.True(Parse(json, out DriverManifest? manifest, out string? error), error);
        Assert.Equal(Enum.Parse<DriverHosting>(expected), manifest!.Hosting);
    }

    [Theory]
    [InlineData("\"kernel\"")]
    [InlineData("\"Isolated\"")]
    [InlineData("\"\"")]
    [InlineData("true")]
    [InlineData("null")]
    public void Hosting_other_than_isolated_or_in_kernel_is_refused_with_both_choices_named(string hosting)
    {
        Assert.False(Parse(WithHosting(hosting), out _, out string? error));
        Assert.Contains("\"hosting\" must be \"isolated\"", error, StringComparison.Ordinal);
        Assert.Contains("\"in-kernel\"", error, StringComparison.Ordinal);
    }

    private static string WithHosting(string value) =>
        PackageWorkspace.Manifest().Replace("\"vendor\": \"Palisade Tests\",", "\"vendor\": \"Palisade Tests\", \"hosting\": " + value + ",", StringComparison.Ordinal);
}
