import os

import gevent

from tailrabbit.buffer import LineBuffer
from tailrabbit.line import Batch
from tailrabbit.spool import Spool
from tailrabbit.stats import InputStats


def make(tmp_path, capacity=1000, max_bytes=1 << 20):
    buffer = LineBuffer(capacity)
    stats = InputStats()
    return Spool(str(tmp_path), "web", max_bytes, buffer, stats), buffer, stats


def replay_all(spool, buffer):
    """Run the replay greenlet until the spool is empty; the buffer's batches, confirmed."""
    greenlet = gevent.spawn(spool.replay_forever)
    out = []
    while spool.holds_lines() or buffer.lines:
        gevent.sleep(0)
        for batch in buffer.take(10000):
            out.append(batch)
            spool.confirm(*batch.source[1:], batch.end_offset)
    greenlet.kill()
    return out


def test_lines_come_back_in_order_with_their_flags(tmp_path):
    spool, buffer, stats = make(tmp_path)
    spool.append(Batch("web", [b"a", b"b\r", b"\xff"], truncated={1}, timestamp=7))
    spool.append(Batch("web", [b"c"], timestamp=8))
    assert spool.holds_lines() and stats.spooled == 4
    batches = replay_all(spool, buffer)
    assert [b.lines for b in batches] == [[b"a", b"b\r", b"\xff"], [b"c"]]
    assert batches[0].truncated == {1} and batches[0].timestamp == 7
    spool.save_position()
    assert not spool.holds_lines()
    assert not [n for n in os.listdir(spool.directory) if n.endswith(".seg")]


def test_confirmed_position_survives_a_restart_and_nothing_confirmed_is_replayed(tmp_path):
    spool, buffer, _ = make(tmp_path)
    for i in range(3):
        spool.append(Batch("web", [b"line %d" % i]))
    greenlet = gevent.spawn(spool.replay_forever)
    gevent.sleep(0)
    first = buffer.take(1)[0]                       # replayed and confirmed
    spool.confirm(*first.source[1:], first.end_offset)
    greenlet.kill()
    spool.close()                                   # the rest replayed, never confirmed
    again, buffer2, _ = make(tmp_path)
    assert [b.lines for b in replay_all(again, buffer2)] == [[b"line 1"], [b"line 2"]]


def test_prepend_puts_unconfirmed_memory_before_what_was_never_replayed(tmp_path):
    spool, buffer, _ = make(tmp_path)
    spool.append(Batch("web", [b"s1"]))
    spool.append(Batch("web", [b"s2"]))
    greenlet = gevent.spawn(spool.replay_forever)
    gevent.sleep(0)
    in_flight = buffer.take(1)                      # s1 published, unconfirmed
    greenlet.kill()
    direct = Batch("web", [b"d0"])                  # older, straight from the FIFO
    # what the daemon hands over: unconfirmed first, then what the buffer holds (s2)
    spool.prepend([direct] + in_flight + buffer.remove_input("web"))
    spool.close()
    again, buffer2, _ = make(tmp_path)
    assert [b.lines for b in replay_all(again, buffer2)] == [[b"d0"], [b"s1"], [b"s2"]]


def test_a_torn_last_batch_is_skipped(tmp_path):
    spool, buffer, _ = make(tmp_path)
    spool.append(Batch("web", [b"whole"]))
    spool.close()
    [segment] = [n for n in os.listdir(spool.directory) if n.endswith(".seg")]
    with open(os.path.join(spool.directory, segment), "ab") as handle:
        handle.write(b"2 1 \nonly one line of two")            # a crash mid-write
    again, buffer2, _ = make(tmp_path)
    assert [b.lines for b in replay_all(again, buffer2)] == [[b"whole"]]


def test_spool_max_bytes_drops_and_counts(tmp_path):
    spool, _, stats = make(tmp_path, max_bytes=40)
    spool.append(Batch("web", [b"x" * 20]))
    spool.append(Batch("web", [b"y" * 20]))
    assert stats.spooled == 1 and stats.dropped == 1
