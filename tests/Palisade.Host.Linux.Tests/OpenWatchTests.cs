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
        Assert.Equal(1, watch.TakeOvers);
    }

    [Fact]
    public void Every_take_over_is_seen_by_exactly_one_end()
    {
        int takeOvers = 0;
        using var watch = new OpenWatch(() => Interlocked.Increment(ref takeOvers));
        watch.Start();
        int refused = 0;

        // Short opens, and every fourth one held until the watch takes it over: whatever the timing, an open either ends
        // normally or was taken over, never both and never neither.
        for (int i = 0; i < 40; i++)
        {
            long ticket = watch.Begin();
            if (i % 4 == 0)
            {
                // Every earlier take-over is already counted in refused (its End failed), so one more is this open's.
                int accounted = refused;
                Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref takeOvers) > accounted, Patience), $"open {i} was never taken over");
            }

            if (!watch.End(ticket))
            {
                refused++;
            }
        }

        // The watch counts a take-over just after it happens, so the last count may still be on its way.
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref takeOvers) == refused, Patience), $"{Volatile.Read(ref takeOvers)} take-overs, {refused} refused ends");
        Assert.True(refused >= 10, $"{refused} opens taken over; every fourth of 40 was held until it was");
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
