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
