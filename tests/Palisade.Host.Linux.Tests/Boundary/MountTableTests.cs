using Palisade.Host.Linux.Boundary;

namespace Palisade.Host.Linux.Tests.Boundary;

/// <summary>The supervisor's mount table, as the kernel boundary reads it from /proc/self/mountinfo.</summary>
public sealed class MountTableTests
{
    [Fact]
    public void A_mountinfo_line_gives_the_id_device_root_point_and_type()
    {
        MountTable.Mount? m = MountTable.Parse("36 35 0:22 /123 /mnt/kernel rw,relatime shared:7 master:1 - proc proc rw");

        Assert.NotNull(m);
        Assert.Equal(36, m.Id);
        Assert.Equal(MountTable.MakeDevice(0, 22), m.Device);
        Assert.Equal("/123"u8.ToArray(), m.Root);
        Assert.Equal("/mnt/kernel"u8.ToArray(), m.Point);
        Assert.Equal("proc", m.FileSystem);
    }

    [Fact]
    public void Escaped_spaces_in_a_mount_point_are_read_back()
    {
        MountTable.Mount? m = MountTable.Parse(@"40 1 8:1 / /mnt/with\040space rw - ext4 /dev/sda1 rw");

        Assert.Equal("/mnt/with space"u8.ToArray(), m!.Point);
    }

    [Fact]
    public void A_line_without_its_separator_is_not_a_mount()
    {
        Assert.Null(MountTable.Parse("36 35 0:22 / /proc rw,relatime proc proc rw"));
    }

    [Fact]
    public void A_path_below_a_mount_point_may_cross_into_it_and_a_sibling_name_does_not()
    {
        var table = new MountTable();
        Assert.True(table.MayCross("/proc/self/status"u8));
        Assert.True(table.MayCross("/proc"u8));
        Assert.False(table.MayCross("/processes/x"u8));
    }

    [Fact]
    public void The_device_of_a_file_system_is_the_one_stat_reports()
    {
        var table = new MountTable();
        MountTable.Mount proc = Assert.Single(table.Mounts, m => m.Point.AsSpan().SequenceEqual("/proc"u8) && m.FileSystem == "proc");
        Assert.Equal(0, Palisade.Interop.Libc.FileIdentityOf("/proc", out Palisade.Api.FileIdentity identity, out _));
        Assert.Equal(identity.Device, proc.Device);
    }
}
