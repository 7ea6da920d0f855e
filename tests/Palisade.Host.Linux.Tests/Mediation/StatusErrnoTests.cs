using Palisade.Kernel.Hosting;
using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Palisade.Api;
using Palisade.Interop;
using Palisade.Host.Linux.Mediation;

namespace Palisade.Host.Linux.Tests.Mediation;

/// <summary>The status↔errno table is the one the driver API documents (Status's XML documentation, "Errno: X").</summary>
public sealed partial class StatusErrnoTests
{
    [GeneratedRegex(@"Errno:\s*<c>(E[A-Z0-9]+)</c>")]
    private static partial Regex DocumentedErrno();

    /// <summary>Each status property of the API with the errno its documentation names first.</summary>
    public static TheoryData<string, string> DocumentedStatuses()
    {
        string xml = Path.Combine(AppContext.BaseDirectory, "Palisade.Api.xml");
        var data = new TheoryData<string, string>();
        foreach (XElement member in XDocument.Load(xml).Descendants("member"))
        {
            string name = (string)member.Attribute("name")!;
            if (!name.StartsWith("P:Palisade.Api.Status.", StringComparison.Ordinal))
            {
                continue;
            }

            Match m = DocumentedErrno().Match(member.ToString());
            if (m.Success)
            {
                data.Add(name["P:Palisade.Api.Status.".Length..], m.Groups[1].Value);
            }
        }

        return data;
    }

    /// <summary>
    /// Every status of the API: its code, the ntstatus.h name that has that code (null for the customer range,
    /// 0xE000xxxx, which Windows leaves to products), and the errno a guest sees when it denies a call (0 for success
    /// codes, which never reach a guest as an errno). The ntstatus.h values were checked against the Windows SDK's
    /// ntstatus.h (STATUS_CALLBACK_BYPASS is 0xC0000503, STATUS_TIMEOUT 0x00000102 is a success code and not
    /// STATUS_IO_TIMEOUT 0xC00000B5, STATUS_DRIVER_BLOCKED is 0xC000036C and 0xC000036B is STATUS_DRIVER_BLOCKED_CRITICAL).
    /// </summary>
    private static readonly (string Name, uint Code, string? Windows, int Errno)[] s_expected =
    [
        ("Success", 0x0000_0000, "STATUS_SUCCESS", 0),
        ("Pending", 0x0000_0103, "STATUS_PENDING", 0),
        ("CallbackBypass", 0xC000_0503, "STATUS_CALLBACK_BYPASS", Errno.EPERM),
        ("Unsuccessful", 0xC000_0001, "STATUS_UNSUCCESSFUL", Errno.EPERM),
        ("InvalidHandle", 0xC000_0008, "STATUS_INVALID_HANDLE", Errno.EBADF),
        ("InvalidParameter", 0xC000_000D, "STATUS_INVALID_PARAMETER", Errno.EINVAL),
        ("AccessDenied", 0xC000_0022, "STATUS_ACCESS_DENIED", Errno.EACCES),
        ("BufferTooSmall", 0xC000_0023, "STATUS_BUFFER_TOO_SMALL", Errno.ERANGE),
        ("ObjectNameInvalid", 0xC000_0033, "STATUS_OBJECT_NAME_INVALID", Errno.EINVAL),
        ("ObjectNameNotFound", 0xC000_0034, "STATUS_OBJECT_NAME_NOT_FOUND", Errno.ENOENT),
        ("ObjectNameCollision", 0xC000_0035, "STATUS_OBJECT_NAME_COLLISION", Errno.EEXIST),
        ("ObjectPathNotFound", 0xC000_003A, "STATUS_OBJECT_PATH_NOT_FOUND", Errno.ENOENT),
        ("SharingViolation", 0xC000_0043, "STATUS_SHARING_VIOLATION", Errno.EBUSY),
        ("RevisionMismatch", 0xC000_0059, "STATUS_REVISION_MISMATCH", Errno.EPERM),
        ("InsufficientResources", 0xC000_009A, "STATUS_INSUFFICIENT_RESOURCES", Errno.ENOMEM),
        ("IoTimeout", 0xC000_00B5, "STATUS_IO_TIMEOUT", Errno.ETIMEDOUT),
        ("NotSupported", 0xC000_00BB, "STATUS_NOT_SUPPORTED", Errno.EOPNOTSUPP),
        ("NetworkAccessDenied", 0xC000_00CA, "STATUS_NETWORK_ACCESS_DENIED", Errno.EACCES),
        ("Cancelled", 0xC000_0120, "STATUS_CANCELLED", Errno.EACCES),
        ("CannotDelete", 0xC000_0121, "STATUS_CANNOT_DELETE", Errno.EPERM),
        ("RegistryCorrupt", 0xC000_014C, "STATUS_REGISTRY_CORRUPT", Errno.EIO),
        ("RegistryIoFailed", 0xC000_014D, "STATUS_REGISTRY_IO_FAILED", Errno.EIO),
        ("KeyHasChildren", 0xC000_0180, "STATUS_KEY_HAS_CHILDREN", Errno.ENOTEMPTY),
        ("InvalidDeviceState", 0xC000_0184, "STATUS_INVALID_DEVICE_STATE", Errno.EINVAL),
        ("NotFound", 0xC000_0225, "STATUS_NOT_FOUND", Errno.ENOENT),
        ("ConnectionRefused", 0xC000_0236, "STATUS_CONNECTION_REFUSED", Errno.ECONNREFUSED),
        ("DriverBlocked", 0xC000_036C, "STATUS_DRIVER_BLOCKED", Errno.EPERM),
        ("InvalidSignature", 0xC000_A000, "STATUS_INVALID_SIGNATURE", Errno.EPERM),
        ("AltitudeCollision", 0xC01C_0011, "STATUS_FLT_INSTANCE_ALTITUDE_COLLISION", Errno.EPERM),
        ("TooManyRegistrations", 0xE000_0001, null, Errno.EPERM),
        ("InvalidAltitude", 0xE000_0002, null, Errno.EPERM),
        ("CallbackFaulted", 0xE000_0003, null, Errno.EPERM),
        ("UntrustedSigner", 0xE000_0004, null, Errno.EPERM),
        ("AlreadyCompleted", 0xE000_0005, null, Errno.EPERM),
        ("FileIdentityMismatch", 0xE000_0006, null, Errno.EPERM),
    ];

    private static IEnumerable<PropertyInfo> StatusProperties() =>
        typeof(Status).GetProperties(BindingFlags.Public | BindingFlags.Static).Where(p => p.PropertyType == typeof(Status));

    public static TheoryData<string, uint, string?, int> ExpectedStatuses()
    {
        var data = new TheoryData<string, uint, string?, int>();
        foreach ((string name, uint code, string? windows, int errno) in s_expected)
        {
            data.Add(name, code, windows, errno);
        }

        return data;
    }

    [Fact]
    public void The_table_lists_every_status_of_the_API_and_no_other()
    {
        Assert.Equal(s_expected.Select(e => e.Name).Order(StringComparer.Ordinal), StatusProperties().Select(p => p.Name).Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(ExpectedStatuses))]
    public void Every_status_has_its_Windows_code_its_name_and_its_Linux_errno(string name, uint code, string? windows, int errno)
    {
        var status = (Status)typeof(Status).GetProperty(name, BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;

        Assert.Equal(code, status.Code);
        Assert.Equal(name, status.Name);
        Assert.Equal(errno, StatusErrno.ErrnoOf(status));
        // Windows' codes keep their Windows values; only the customer range (bit 29) has none.
        Assert.Equal(windows is null, (code & 0x2000_0000) != 0);
        Assert.Equal(errno == 0, status.IsSuccess);
    }

    [Fact]
    public void Every_code_names_one_status()
    {
        Assert.Equal(s_expected.Length, s_expected.Select(e => e.Code).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(DocumentedStatuses))]
    public void Every_status_maps_to_the_errno_its_documentation_names(string status, string errno)
    {
        var value = (Status)typeof(Status).GetProperty(status, BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
        int expected = (int)typeof(Errno).GetField(errno)!.GetValue(null)!;

        Assert.Equal(expected, StatusErrno.ErrnoOf(value));
    }

    [Fact]
    public void The_documentation_names_an_errno_for_every_status_of_the_table()
    {
        var documented = DocumentedStatuses().Select(row => (string)row[0]).ToHashSet();

        Assert.All(StatusErrno.Table.ToArray(), entry => Assert.Contains(entry.Status.Name, documented));
    }

    [Fact]
    public void An_error_status_without_a_documented_errno_is_EPERM()
    {
        Assert.Equal(Errno.EPERM, StatusErrno.ErrnoOf(Status.AltitudeCollision));
    }

    [Fact]
    public void Success_is_no_errno()
    {
        Assert.Equal(0, StatusErrno.ErrnoOf(Status.Success));
    }

    [Theory]
    [InlineData(0, 0x0u)]
    [InlineData(Errno.ENOENT, 0xC0000034u)]
    [InlineData(Errno.ENOTDIR, 0xC000003Au)]
    [InlineData(Errno.EACCES, 0xC0000022u)]
    [InlineData(Errno.EPERM, 0xC0000022u)]
    [InlineData(Errno.EEXIST, 0xC0000035u)]
    [InlineData(Errno.EBUSY, 0xC0000043u)]
    [InlineData(Errno.EIO, 0xC0000001u)]
    public void An_errno_of_the_hosts_own_operation_becomes_the_status_post_callbacks_see(int errno, uint status)
    {
        Assert.Equal(new Status(status), StatusErrno.StatusOf(errno));
    }
}
