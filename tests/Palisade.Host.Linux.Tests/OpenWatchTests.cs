using Palisade.Host.Linux.Supervision;

namespace Palisade.Host.Linux.Tests;

public sealed class OpenWatchTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public void An_open_still_in_progress_after_two_polls_is_taken_over_once()
    {
        int takeOvers = 0;
        using var watch = new OpenWatch(() => Interlocked.Increment(ref takeOvers));
        watch.Start();

        long ticket = watch.Begin();

        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref takeOvers) > 0, Patience));
        Assert.False(watch.End(ticket));
        Thread.Sleep(OpenWatch.PollMilliseconds * 10);
        Assert.Equal(1, Volatile.Read(ref takeOvers));
        Assert.Equal(1, watch.TakeOvers);
    }

    [Fact]
    public void Every_take_over_is_seen_by_exactly_one_end()
    {
        int takeOvers = 0;
        using var watch = new OpenWatch(() => Interlocked.Increment(ref takeOvers));
        watch.Start();
        int refused = 0;

        // Opens of mixed lengths, some outlasting the watch's polls: whatever the timing, an open either ends normally or
        // was taken over, never both and never neither.
        for (int i = 0; i < 40; i++)
        {
            long ticket = watch.Begin();
            Thread.Sleep(i % 4 == 0 ? OpenWatch.PollMilliseconds * 4 : 0);
            if (!watch.End(ticket))
            {
                refused++;
            }
        }

        Assert.Equal(Volatile.Read(ref takeOvers), refused);
        Assert.True(refused > 0, "no open outlasted two polls; the watch never looked");
    }

    [Fact]
    public void A_parked_watch_wakes_for_the_next_open()
    {
        int takeOvers = 0;
        using var watch = new OpenWatch(() => Interlocked.Increment(ref takeOvers));
        watch.Start();
        Assert.True(SpinWait.SpinUntil(() => watch.Parked, Patience), "the watch did not park after a second without opens");

        long ticket = watch.Begin();

        Assert.False(watch.Parked);
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref takeOvers) > 0, Patience), "the open that waited was not taken over");
        Assert.False(watch.End(ticket));
    }
}
