from tailrabbit.line import Batch
from tailrabbit.publisher.confirms import ConfirmTracker


def batch(n, name="x"):
    return Batch(name, [b"l"] * n)


def test_multiple_acks_release_in_order():
    tracker = ConfirmTracker()
    a, b, c = batch(3), batch(2), batch(4)
    for item in (a, b, c):
        tracker.add(item)
    assert tracker.outstanding == 9
    assert tracker.ack(2, True) == []
    assert tracker.ack(5, True) == [a, b]
    assert tracker.ack(9, True) == [c]
    assert tracker.outstanding == 0


def test_single_acks_out_of_order_release_only_contiguous_prefixes():
    tracker = ConfirmTracker()
    a, b = batch(2), batch(2)
    tracker.add(a)
    tracker.add(b)
    assert tracker.ack(4, False) == []
    assert tracker.ack(3, False) == []
    assert tracker.ack(1, False) == []
    assert tracker.ack(2, False) == [a, b]


def test_take_all_returns_unconfirmed_in_order_and_resets():
    tracker = ConfirmTracker()
    a, b = batch(2), batch(2)
    tracker.add(a)
    tracker.add(b)
    tracker.ack(2, True)
    tracker.add(batch(1))
    remaining = tracker.take_all()
    assert remaining[0] is b and len(remaining) == 2
    assert tracker.outstanding == 0 and len(tracker) == 0


def test_input_trackers_count_tags_per_input_channel_and_forget_a_taken_input():
    from tailrabbit.publisher.trackers import InputTrackers
    trackers = InputTrackers()
    a1, b1, a2 = batch(2, "a"), batch(3, "b"), batch(1, "a")
    for item in (a1, b1, a2):
        trackers.add(item)
    assert trackers.outstanding == 6
    assert trackers.ack("b", 3, True) == [b1]        # b's tags are 1..3 on its channel
    assert trackers.ack("a", 2, True) == [a1]        # a's are 1..3 on its own
    assert trackers.take("a") == [a2] and trackers.outstanding == 0
    assert trackers.ack("a", 3, True) == []          # a late ack of a taken input: nothing
    trackers.add(batch(1, "b"))
    assert [len(b) for b in trackers.take_all()] == [1] and trackers.outstanding == 0


def test_bytes_in_flight_are_counted_so_long_lines_cannot_pile_up():
    """The publisher also stops at a window of bytes: 50,000 lines of 512 KiB in flight
    would be 25 GB outside the buffer's byte bound."""
    tracker = ConfirmTracker()
    tracker.add(Batch("x", [b"a" * 1000, b"b" * 24]))
    tracker.add(Batch("x", [b"c" * 100]))
    assert tracker.outstanding_bytes == 1124
    tracker.ack(2, True)
    assert tracker.outstanding_bytes == 100
    tracker.take_all()
    assert tracker.outstanding_bytes == 0


def test_a_batch_of_many_lines_in_few_messages_takes_one_tag_per_message():
    """batch_lines > 1: 250 lines in 3 messages take tags 1..3, the next batch 4..4."""
    tracker = ConfirmTracker()
    big, small = batch(250), batch(1)
    tracker.add(big, 3)
    tracker.add(small, 1)
    assert tracker.outstanding == 251
    assert tracker.ack(2, True) == []
    assert tracker.ack(3, True) == [big]
    assert tracker.ack(4, True) == [small] and tracker.outstanding == 0
    from tailrabbit.publisher.trackers import InputTrackers
    trackers = InputTrackers()
    trackers.add(batch(100, "a"), 1)
    trackers.add(batch(5, "a"))
    assert trackers.ack("a", 1, True) != [] and trackers.outstanding == 5


def test_a_nack_takes_the_batches_from_the_nacked_tag_and_earlier_ones_wait_for_acks():
    from tailrabbit.publisher.trackers import InputTrackers
    trackers = InputTrackers()
    first, second, third = batch(10, "a"), batch(10, "a"), batch(10, "a")
    for b in (first, second, third):
        trackers.add(b)                               # tags 1-10, 11-20, 21-30
    set_aside = []

    def aside(name, batches):
        set_aside.extend(batches)
    assert trackers.nack("a", 15, False, aside) == ([], 16)   # split at line 15
    assert trackers.outstanding == 30                 # every tag's fate is awaited
    assert trackers.ack("a", 10, True) == [first]     # the late ack of a stored line counts
    head, = trackers.ack("a", 14, True)
    assert head.lines == second.lines[:4] and trackers.outstanding == 16
    assert trackers.nack("a", 30, True, aside) == ([], 0)     # 16-30 refused too
    assert [b.lines for b in set_aside] == [second.lines[4:], third.lines]
    assert trackers.outstanding == 0
    assert trackers.nack("b", 1, False, aside) == ([], 0)
    trackers.add(batch(10, "c"))                      # tags 1-10
    assert trackers.ack("c", 3, True) == []
    (acked,), held = trackers.nack("c", 4, False, aside)    # the head was acked already
    assert len(acked) == 3 and held == 7


def test_a_nack_inside_a_batch_splits_it_and_the_stored_head_waits_for_its_ack():
    from tailrabbit.marks import FilePosition, PartOfRecord, SpoolPosition
    tracker, set_aside = ConfirmTracker(), []
    whole = Batch("a", [b"l%d" % i for i in range(10)], offsets=list(range(0, 100, 10)),
                  truncated={2, 7}, source=FilePosition(_Record()), end_offset=100)
    tracker.add(whole)                                # tags 1-10
    assert tracker.nack(4, False, set_aside.extend) == ([], 7)   # line 4 (index 3)
    head, = tracker.ack(3, True)                      # the stored head's late ack
    assert head.lines == whole.lines[:3] and head.end_offset == 30
    assert head.truncated == {2} and head.source is whole.source
    assert tracker.outstanding == 7 and tracker.outstanding_bytes == 14
    tracker.nack(10, True, set_aside.extend)
    tail, = set_aside
    assert tail.lines == whole.lines[3:] and tail.offsets == whole.offsets[3:]
    assert tail.truncated == {4} and tail.end_offset == 100
    tracker, set_aside = ConfirmTracker(), []
    spooled = Batch("a", [b"x"] * 5, source=SpoolPosition(None, 0), end_offset=50)
    tracker.add(spooled)                              # tags 1-5: a spool record
    tracker.nack(3, False, set_aside.extend)          # split: only its last part moves it
    head, = tracker.ack(2, True)
    assert isinstance(head.source, PartOfRecord) and head.source.whole is spooled.source
    tracker.nack(5, True, set_aside.extend)
    tail, = set_aside
    assert tail.source is spooled.source and tail.end_offset == 50 and len(tail) == 3
    tracker, set_aside = ConfirmTracker(), []
    piped = Batch("a", [b"y"] * 5)
    tracker.add(piped, messages=1)                    # tag 1: five lines, one message
    tracker.nack(1, False, set_aside.extend)
    assert set_aside == [piped]


class _Record:
    generation = 0
    path = "/l/a.log"
