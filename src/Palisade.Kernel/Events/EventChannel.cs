// One producer's bounded queue of encoded event lines: a byte ring that many threads append to under a short lock
// (a copy of the line, never a wait for the consumer) and that the stream's one writer thread drains without a lock.
//
// Each line is numbered in its channel (channelSeq) when it is offered, whether or not it fits: a line that does not
// fit is lost and leaves a hole in the channel's numbering, which the writer reports as a gap with the exact range.
// Records are 8-byte aligned: length (u32), reserved (u32), ticket (u64), channelSeq (u64), then the line's bytes. A
// record never wraps around the end of the ring; a wrap marker sends the reader back to the start.
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.Json;

namespace Palisade.Kernel.Events;

internal sealed class EventChannel
{
    public const int RecordHeaderSize = 24;
    private const uint WrapMarker = uint.MaxValue;

    private readonly Lock _lock = new();
    private readonly byte[] _ring;

    // Positions are byte counts since the channel was made (monotonic); the index in the ring is position % length.
    private long _tail;
    private long _head;
    private long _produced;
    private long _lost;
    private bool _closed;

    // The writer's own view: where it reads next, and the last channelSeq handed to the sink (written or reported lost).
    private long _readPosition;
    private long _delivered;

    public EventChannel(string name, int capacity, int ringSize)
    {
        Debug.Assert(capacity > 0 && ringSize >= capacity && ringSize % 8 == 0, "a channel's ring holds at least its capacity, in 8-byte units");
        Name = name;
        NameJson = JsonEncodedText.Encode(name);
        Capacity = capacity;
        _ring = new byte[ringSize];
    }

    /// <summary>The channel's name: <c>kernel</c> or a driver's name.</summary>
    public string Name { get; }

    /// <summary>The name, escaped for JSON once.</summary>
    public JsonEncodedText NameJson { get; }

    /// <summary>The bytes of queued lines the channel holds before the policy applies (drop, or make operations wait).</summary>
    public int Capacity { get; }

    /// <summary>The most bytes the ring can hold (the capacity, or more under the block policy: see EventStream).</summary>
    public int RingSize => _ring.Length;

    /// <summary>Bytes queued and not yet taken by the writer.</summary>
    public long Used => Volatile.Read(ref _tail) - Volatile.Read(ref _head);

    /// <summary>Lines offered to the channel so far (the last channelSeq handed out).</summary>
    public long Produced => Volatile.Read(ref _produced);

    /// <summary>Lines that did not fit and were lost.</summary>
    public long Lost => Volatile.Read(ref _lost);

    /// <summary>The last channelSeq the writer handed to the sink, as a line or within a gap line.</summary>
    public long Delivered
    {
        get => Volatile.Read(ref _delivered);
        set => Volatile.Write(ref _delivered, value);
    }

    /// <summary>The next channelSeq the writer expects; a line numbered above it means the ones between were lost.</summary>
    public long Expected { get; set; } = 1;

    /// <summary>
    /// Appends a line if it fits in the ring; otherwise counts it as lost. Never waits for the consumer: the lock is
    /// held only for the copy.
    /// </summary>
    /// <param name="line">The encoded line.</param>
    /// <param name="tickets">The stream's ticket counter: every appended line takes the next ticket, which orders
    /// lines across channels.</param>
    /// <returns>True when appended; false when lost (counted) or when the channel is closed (not counted: the
    /// stream has ended).</returns>
    public bool TryWrite(ReadOnlySpan<byte> line, ref long tickets)
    {
        int need = Align(RecordHeaderSize + line.Length);
        lock (_lock)
        {
            if (_closed)
            {
                return false;
            }

            long seq = ++_produced;
            long tail = _tail;
            int index = (int)(tail % _ring.Length);
            int toEnd = _ring.Length - index;
            int skip = need > toEnd ? toEnd : 0;
            if (tail + skip + need - Volatile.Read(ref _head) > _ring.Length)
            {
                _lost++;
                return false;
            }

            if (skip > 0)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(_ring.AsSpan(index), WrapMarker);
                tail += skip;
                index = 0;
            }

            Span<byte> record = _ring.AsSpan(index, need);
            BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)line.Length);
            BinaryPrimitives.WriteInt64LittleEndian(record[8..], Interlocked.Increment(ref tickets));
            BinaryPrimitives.WriteInt64LittleEndian(record[16..], seq);
            line.CopyTo(record[RecordHeaderSize..]);
            // A full fence: the writer, about to sleep, marks itself idle and then looks at the tail; this producer
            // publishes the tail and then looks at the idle mark. One of the two sees the other.
            Interlocked.Exchange(ref _tail, tail + need);
            return true;
        }
    }

    /// <summary>Ends the channel: later lines are refused and not counted (the stream has written its last line).</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
        }
    }

    /// <summary>Writer only: the ticket of the next queued line, if there is one.</summary>
    public bool TryPeek(out long ticket)
    {
        ticket = 0;
        long tail = Volatile.Read(ref _tail);
        if (_readPosition == tail)
        {
            return false;
        }

        int index = (int)(_readPosition % _ring.Length);
        if (BinaryPrimitives.ReadUInt32LittleEndian(_ring.AsSpan(index)) == WrapMarker)
        {
            _readPosition += _ring.Length - index;
            index = 0;
        }

        ticket = BinaryPrimitives.ReadInt64LittleEndian(_ring.AsSpan(index + 8));
        return true;
    }

    /// <summary>Writer only, after <see cref="TryPeek"/>: the next line and its channelSeq. Valid until <see cref="Advance"/>.</summary>
    public ReadOnlySpan<byte> Current(out long channelSeq)
    {
        int index = (int)(_readPosition % _ring.Length);
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(_ring.AsSpan(index));
        channelSeq = BinaryPrimitives.ReadInt64LittleEndian(_ring.AsSpan(index + 16));
        return _ring.AsSpan(index + RecordHeaderSize, length);
    }

    /// <summary>Writer only: consumes the current line and frees its room for producers.</summary>
    public void Advance()
    {
        int index = (int)(_readPosition % _ring.Length);
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(_ring.AsSpan(index));
        _readPosition += Align(RecordHeaderSize + length);
        Volatile.Write(ref _head, _readPosition);
    }

    /// <summary>
    /// Writer only: when the channel is drained and lines after <see cref="Expected"/> were offered, they were all
    /// lost (a line that fitted would be queued). Returns the last lost channelSeq, or 0 when there is no such gap.
    /// Takes the lock, so that a line being appended right now is not mistaken for a lost one.
    /// </summary>
    public long TrailingLoss()
    {
        if (Volatile.Read(ref _lost) == 0)
        {
            return 0;
        }

        lock (_lock)
        {
            return _readPosition == _tail && _produced >= Expected ? _produced : 0;
        }
    }

    private static int Align(int n) => (n + 7) & ~7;
}
