using Palisade.Kernel.Registry;

namespace Palisade.Kernel.Tests.Registry;

public sealed class Crc32CTests
{
    [Fact]
    public void The_checksum_of_the_standard_check_string_is_the_published_value()
    {
        Assert.Equal(0xE306_9283u, Crc32C.Compute("123456789"u8));
    }

    [Fact]
    public void The_table_path_agrees_with_the_hardware_path()
    {
        byte[] data = new byte[1031];
        new Random(3).NextBytes(data);

        uint software = Crc32C.Finish(Crc32C.UpdateSoftware(Crc32C.Start(), data));

        Assert.Equal(Crc32C.Compute(data), software);
    }
}
