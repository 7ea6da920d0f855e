using System.Text;
using Palisade.Api;
using Palisade.Drivers.Antivirus;

namespace Palisade.Drivers.Tests;

/// <summary>
/// How many reads a scan asks for: isolated, each is a round trip to the kernel, so a scan that knows the file's size
/// from its change stamp does not read once more to be told the file ended; a read that comes back short before that
/// size is not taken for the end.
/// </summary>
public sealed class ScannerReadTests
{
    private static readonly Scanner Scanner = NewScanner();

    private static Scanner NewScanner()
    {
        Assert.True(SignatureSet.TryParse("hex 4d414c57415245 Test.Pattern", out SignatureSet? set, out string? error), error);
        return new Scanner(set);
    }

    /// <summary>A file in memory that counts the reads and may cut one read short.</summary>
    private struct CountingSource(byte[] content, long shortAt) : IScanSource
    {
        public int Reads;

        public Status Read(long offset, Span<byte> buffer, out int bytesRead)
        {
            Reads++;
            int available = (int)Math.Max(0, Math.Min(buffer.Length, content.Length - offset));
            if (offset == shortAt && available > 1)
            {
                available /= 2;
            }

            content.AsSpan((int)offset, available).CopyTo(buffer);
            bytesRead = available;
            return Status.Success;
        }
    }

    [Fact]
    public void A_scan_that_knows_the_size_reads_a_small_file_once()
    {
        byte[] content = Encoding.ASCII.GetBytes("a clean file of a few bytes");
        var source = new CountingSource(content, shortAt: -1);

        Status s = Scanner.Scan(ref source, 1 << 20, content.Length, out string? detection);

        Assert.Equal(Status.Success, s);
        Assert.Null(detection);
        Assert.Equal(1, source.Reads);
    }

    [Fact]
    public void A_scan_that_does_not_know_the_size_reads_until_a_read_returns_nothing()
    {
        byte[] content = Encoding.ASCII.GetBytes("a clean file of a few bytes");
        var source = new CountingSource(content, shortAt: -1);

        Status s = Scanner.Scan(ref source, 1 << 20, -1, out string? detection);

        Assert.Equal(Status.Success, s);
        Assert.Null(detection);
        Assert.Equal(2, source.Reads);
    }

    [Fact]
    public void A_read_cut_short_before_the_known_size_is_not_the_end_and_what_follows_is_scanned()
    {
        byte[] content = new byte[100_000];
        Encoding.ASCII.GetBytes("MALWARE").CopyTo(content, 99_000);
        var source = new CountingSource(content, shortAt: 0);

        Status s = Scanner.Scan(ref source, 1 << 20, content.Length, out string? detection);

        Assert.Equal(Status.Success, s);
        Assert.Equal("Test.Pattern", detection);
    }

    [Fact]
    public void A_file_that_grew_past_its_stamped_size_is_read_to_its_real_end()
    {
        byte[] content = new byte[200_000];
        Encoding.ASCII.GetBytes("MALWARE").CopyTo(content, 150_000);
        var source = new CountingSource(content, shortAt: -1);

        Status s = Scanner.Scan(ref source, 1 << 20, knownLength: 10, out string? detection);

        Assert.Equal(Status.Success, s);
        Assert.Equal("Test.Pattern", detection);
    }
}
