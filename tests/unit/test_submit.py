"""Input.submit (inputs/base.py): where a batch goes under each overflow policy when the
memory buffer is full: block waits, spool goes to disk (and keeps order behind what is
spooled), drop counts; and a batch whose wait is cut short by a stop is not lost.

The buffer is the real LineBuffer (pure logic); the spool is a fake with the four methods
submit uses.
"""

import gevent
import pytest
from gevent.event import Event

from tailrabbit.buffer import LineBuffer
from tailrabbit.inputs.base import Input
from tailrabbit.settings import InputSettings
from tailrabbit.stats import Stats


class FakeSpool:
    """holds_lines / append / wait_replayed, as spool/store.py's Spool has them."""

    def __init__(self, *held):
        self.batches = list(held)           # appended, oldest first (bodies per batch)
        self._replayed = Event()
        if not held:
            self._replayed.set()

    def holds_lines(self):
        return bool(self.batches)

    def append(self, batch):
        self.batches.append(batch.lines)
        self._replayed.clear()

    def wait_replayed(self):
        self._replayed.wait()

    def replay_into(self, buffer):
        """What the replay greenlet does, all at once."""
        from tailrabbit.line import Batch
        for lines in self.batches:
            buffer.put(Batch("web", lines))
        self.batches = []
        self._replayed.set()


def make(overflow, spool=None, capacity=2):
    """An input of kind `overflow` on a buffer full at `capacity` lines."""
    settings = InputSettings(name="web", type="fifo", path="/run/web.fifo", queue="web",
                             overflow=overflow)
    stats = Stats(["web"])
    buffer = LineBuffer(capacity)
    return Input(settings, buffer, stats, spool), buffer, stats.of("web")


def buffered(buffer):
    return [batch.lines for batch in buffer.take(1000)]


def fill(item):
    """Fill the buffer (a batch is admitted while fewer than `capacity` lines are held)."""
    item.submit([b"f0", b"f1"])
    assert item.buffer.full()


# ---- block ---------------------------------------------------------------------------

def test_block_waits_for_room_then_buffers_in_order():
    item, buffer, counters = make("block")
    fill(item)
    waiting = gevent.spawn(item.submit, [b"w0", b"w1"])
    gevent.sleep(0.05)
    assert not waiting.ready(), "submit returned with the buffer full"
    assert buffer.take(1)[0].lines == [b"f0", b"f1"]      # the publisher makes room
    waiting.join(1)
    assert waiting.successful()
    assert buffered(buffer) == [[b"w0", b"w1"]]
    assert (counters.read, counters.dropped, counters.spooled) == (4, 0, 0)


def test_block_killed_while_waiting_spools_the_batch():
    """A stop or a reload kills the input while it waits: the batch was read (and
    counted), so it goes to the spool instead of vanishing."""
    spool = FakeSpool()
    item, buffer, counters = make("block", spool)
    fill(item)
    waiting = gevent.spawn(item.submit, [b"w0", b"w1"])
    gevent.sleep(0.05)
    waiting.kill()                                  # GreenletExit inside submit
    assert isinstance(waiting.value, gevent.GreenletExit)
    assert spool.batches == [[b"w0", b"w1"]]
    assert buffered(buffer) == [[b"f0", b"f1"]]
    assert counters.read == 4


def test_block_without_a_spool_killed_while_waiting_leaves_the_batch_unbuffered():
    """A file input has no spool: its checkpoint never passed the batch, which is read
    again at the next start; nothing half-handed-on may reach the buffer."""
    item, buffer, _counters = make("block")
    fill(item)
    waiting = gevent.spawn(item.submit, [b"w0"])
    gevent.sleep(0.05)
    waiting.kill()
    assert buffered(buffer) == [[b"f0", b"f1"]]


def test_block_waits_behind_lines_an_earlier_run_spooled():
    spool = FakeSpool([b"old"])
    item, buffer, _counters = make("block", spool, capacity=100)
    waiting = gevent.spawn(item.submit, [b"new"])
    gevent.sleep(0.05)
    assert not waiting.ready() and buffered(buffer) == [], "newer lines jumped the spool"
    spool.replay_into(buffer)
    waiting.join(1)
    assert buffered(buffer) == [[b"old"], [b"new"]]
    assert spool.batches == []                     # block never writes to the spool


# ---- spool ---------------------------------------------------------------------------

def test_spool_buffers_while_there_is_room_then_spools_without_waiting():
    spool = FakeSpool()
    item, buffer, counters = make("spool", spool)
    item.submit([b"a0", b"a1"])
    item.submit([b"b0"])                            # full: to disk, at once
    assert buffered(buffer) == [[b"a0", b"a1"]]
    assert spool.batches == [[b"b0"]]
    assert counters.read == 3 and counters.dropped == 0


def test_spool_keeps_newer_lines_behind_spooled_ones_even_with_room():
    spool = FakeSpool()
    item, buffer, _counters = make("spool", spool)
    fill(item)
    item.submit([b"s0"])
    buffered(buffer)                                # room again, the spool still holds
    item.submit([b"s1"])
    assert buffered(buffer) == []
    assert spool.batches == [[b"s0"], [b"s1"]]
    spool.replay_into(buffer)
    assert buffered(buffer) == [[b"s0"], [b"s1"]]
    item.submit([b"after"])                         # the spool is empty: memory again
    assert buffered(buffer) == [[b"after"]] and spool.batches == []


# ---- drop ----------------------------------------------------------------------------

def test_drop_counts_the_lines_it_drops_and_never_waits():
    item, buffer, counters = make("drop")
    fill(item)
    item.submit([b"d0", b"d1", b"d2"])              # returns: nothing to wait for
    assert counters.dropped == 3 and counters.read == 5
    buffered(buffer)
    item.submit([b"kept"])
    assert buffered(buffer) == [[b"kept"]]
    assert counters.dropped == 3


def test_drop_with_lines_spooled_by_an_earlier_run_queues_behind_them():
    spool = FakeSpool([b"old"])
    item, buffer, counters = make("drop", spool, capacity=100)
    item.submit([b"new"])
    assert buffered(buffer) == [] and counters.dropped == 0
    assert spool.batches == [[b"old"], [b"new"]]


# ---- every policy --------------------------------------------------------------------

@pytest.mark.parametrize("overflow", ["block", "spool", "drop"])
def test_counts_truncated_lines_and_ignores_an_empty_read(overflow):
    item, buffer, counters = make(overflow, FakeSpool(), capacity=100)
    item.submit([])
    assert counters.read == 0 and buffered(buffer) == []
    item.submit([b"x" * 10, b"short"], truncated={0})
    assert counters.read == 2 and counters.truncated == 1
    batch, = buffer.take(10)
    assert batch.lines == [b"x" * 10, b"short"] and batch.truncated == {0}
