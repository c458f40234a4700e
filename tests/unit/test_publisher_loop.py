"""The publish loop (publisher/loop.py and events.py) against a fake broker session.

`Publisher.run()` runs for real, in a greenlet; only `Session` is replaced (loop.py looks
it up by name when it connects), by one that records the frames written to it and the
inputs it was opened with, and fails when told. The test plays the broker: it acks, nacks
and returns by calling the publisher's callbacks with the delivery tags the frames got,
as the session's reader greenlet would. No socket, no broker, a few tenths of a second
each (the parking retry and the refresh are real timers, made short).
"""

import struct
import time

import gevent
import pytest
from gevent.event import Event

from tailrabbit.buffer import LineBuffer
from tailrabbit.line import Batch
from tailrabbit.publisher import loop
from tailrabbit.settings import BrokerSettings, InputSettings
from tailrabbit.stats import Stats


def settings(name):
    return InputSettings(name=name, type="fifo", path=f"/run/{name}.fifo", queue=name,
                         routing_key=name)


class FakeSession:
    """Stands for publisher/session.py's Session: what the loop calls, nothing more."""

    frame_max = 131072

    def __init__(self, broker, host, port, callbacks, log):
        self.address = f"{host}:{port}"
        self.callbacks = callbacks
        self.blocked = False
        self.failed = Event()
        self.error = None
        self.heartbeat = 0                  # no heartbeats: nothing but publishes written
        self.opened_at = None
        self.channels = {}                  # input name -> channel id
        self.declared = None                # names of the inputs it was opened with
        self.messages = []                  # (channel id, routing key, body), as written
        self.closed = False
        self._partial = {}                  # channel id -> [routing key, size, body]
        self._rest = b""
        log.append(self)

    # -- what the loop calls ----------------------------------------------------------
    def open(self, inputs, confirm, timeout):
        self.opened_at = time.monotonic()
        self.declared = [item.name for item in inputs]
        self.channels = {name: number for number, name in enumerate(self.declared, 1)}
        return []

    def start_reader(self):
        pass

    def answer_closed_channels(self):
        pass

    def send_heartbeat(self):
        pass

    def write(self, data):
        assert not self.failed.is_set(), "written after the session failed"
        self._parse(self._rest + data)

    def close(self, timeout=2.0):
        self.closed = True
        self.close_timeout = timeout

    # -- what the test does -----------------------------------------------------------
    def fail(self, reason="connection reset by the test"):
        self.error = reason
        self.failed.set()

    def bodies(self, name):
        """Bodies published on input `name`'s channel, in order (its delivery tags are
        1, 2, ... in this order)."""
        channel = self.channels.get(name)
        return [body for number, _key, body in self.messages if number == channel]

    def _parse(self, data):
        """AMQP 0-9-1 frames -> messages: method (basic.publish), header, body frames."""
        at = 0
        while len(data) - at >= 7:
            kind, channel, size = struct.unpack_from(">BHI", data, at)
            if len(data) - at < 8 + size:
                break
            payload = data[at + 7:at + 7 + size]
            assert data[at + 7 + size] == 0xCE, "frame end"
            at += 8 + size
            if kind == 1:
                assert struct.unpack_from(">HH", payload) == (60, 40), "basic.publish"
                exchange_length = payload[6]
                key_at = 7 + exchange_length
                key = payload[key_at + 1:key_at + 1 + payload[key_at]].decode()
                self._partial[channel] = [key, None, b""]
            elif kind == 2:
                self._partial[channel][1] = struct.unpack_from(">Q", payload, 4)[0]
            elif kind == 3:
                self._partial[channel][2] += payload
            message = self._partial.get(channel)
            if message and message[1] is not None and len(message[2]) == message[1]:
                self.messages.append((channel, message[0], message[2]))
                del self._partial[channel]
        self._rest = data[at:]


def until(predicate, timeout=5.0, message="condition"):
    """Let the publisher's greenlet run until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        gevent.sleep(0.002)


class Harness:
    """A running Publisher, its buffer and stats, and every session it opened."""

    def __init__(self, monkeypatch, names=("a", "b"), refresh=None, confirm=True):
        self.sessions = []
        # a parked input's first retry: 2 s (its jitter halves it at most) is long here
        monkeypatch.setattr(loop, "ROUTE_RETRY_FIRST", 0.2)
        monkeypatch.setattr(loop, "Session", lambda broker, host, port, callbacks:
                            FakeSession(broker, host, port, callbacks, self.sessions))
        self.broker = BrokerSettings(hosts=(("fake", 5672),), refresh=refresh,
                                     heartbeat=0, confirm=confirm)
        self.buffer = LineBuffer(100000)
        self.stats = Stats(names)
        self.confirmed = []                 # batches handed to on_confirmed, in order
        self.publisher = loop.Publisher(self.broker, [settings(n) for n in names],
                                        self.buffer, self.stats, self.confirmed.append)
        self.greenlet = gevent.spawn(self.publisher.run)
        until(lambda: self.sessions and self.sessions[-1].opened_at, message="connected")

    @property
    def session(self):
        return self.sessions[-1]

    def put(self, name, *bodies):
        batch = Batch(name, list(bodies))
        assert self.buffer.put(batch, block=False)
        return batch

    def published(self, name, count, session=None):
        """Wait until `count` messages of `name` are on `session` (default: the last)."""
        until(lambda: len((session or self.session).bodies(name)) >= count,
              message=f"{count} messages of {name}")
        return (session or self.session).bodies(name)

    def reconnected(self, count):
        """Wait until the publisher is on its `count`-th session, opened."""
        until(lambda: len(self.sessions) >= count and self.sessions[count - 1].opened_at
              and self.publisher._session is self.sessions[count - 1],
              message=f"session {count}")
        return self.sessions[count - 1]

    def confirmed_of(self, name):
        return self.stats.of(name).confirmed

    def stop(self):
        self.greenlet.kill()


@pytest.fixture
def harness(monkeypatch):
    made = []

    def make(**kwargs):
        made.append(Harness(monkeypatch, **kwargs))
        return made[-1]
    yield make
    for item in made:
        item.stop()


def lines(prefix, count):
    return [b"%s %d" % (prefix, i) for i in range(count)]


def test_after_a_nack_the_unconfirmed_lines_go_again_first_in_order(harness):
    h = harness()
    first, second, third = (h.put("a", *lines(b"a%d" % n, 3)) for n in (1, 2, 3))
    other = h.put("b", *lines(b"b", 2))
    one = h.session
    h.published("a", 9)
    h.published("b", 2)
    h.publisher.on_ack("a", 3, True)                # the first batch: confirmed
    assert h.confirmed == [first] and h.confirmed_of("a") == 3
    h.publisher.on_nack("a", 5, False)              # a line of the second: refused
    fourth = h.put("a", *lines(b"a4", 2))           # buffered after the nack: waits
    h.publisher.on_ack("a", 9, True)                # 4 and 6-9 stored, 5 stays refused
    assert h.confirmed_of("a") == 4                 # 6-9 wait for 5: only 5 goes again
    gevent.sleep(0.05)
    assert one.bodies("a") == first.lines + second.lines + third.lines, \
        "a parked input was published"
    # The retry of the parked input is a planned reconnect: it waits for b's confirm,
    # so b's lines are not published twice.
    gevent.sleep(0.3)                               # past the retry (0.125-0.25 s)
    assert h.publisher._session is one and not one.closed
    h.publisher.on_ack("b", 2, True)
    two = h.reconnected(2)
    assert one.closed
    # the refused line again, then the newer ones
    assert h.published("a", 3, two) == second.lines[1:2] + fourth.lines
    assert two.bodies("b") == [], "b's confirmed lines went again"
    h.publisher.on_ack("a", 3, True)
    until(lambda: h.confirmed_of("a") == 11, message="every line of a confirmed")
    assert [b.lines for b in h.confirmed] == [first.lines, second.lines[:1], other.lines,
                                              second.lines[1:2], second.lines[2:],
                                              third.lines, fourth.lines]
    assert h.stats.of("a").published == 3 + 3 + 3 + 1 + 2


def test_the_ack_after_a_return_confirms_nothing(harness):
    """The broker returns an unroutable line, then acks it (basic.return comes before the
    basic.ack of the same tag): the line must not count as delivered."""
    h = harness(names=("a",))
    batch = h.put("a", b"one", b"two", b"three")
    one = h.session
    h.published("a", 3)
    h.publisher.on_return("a", Exception("NO_ROUTE (312)"), "", "a", None)
    h.publisher.on_ack("a", 3, True)               # the ack of the returned line
    assert h.confirmed == [] and h.confirmed_of("a") == 0
    assert h.stats.of("a").returned == 1
    assert h.publisher.unconfirmed_of("a") == 3
    two = h.reconnected(2)                          # the parked input's retry
    assert one.closed
    assert h.published("a", 3, two) == batch.lines  # published again, whole, in order
    h.publisher.on_ack("a", 3, True)
    until(lambda: h.confirmed == [batch], message="the batch confirmed")
    assert h.confirmed_of("a") == 3


def test_a_refresh_waits_for_every_confirm_and_repeats_nothing(harness):
    h = harness(refresh=0.3)
    old = h.put("a", *lines(b"old", 4))
    one = h.session
    h.published("a", 4)
    gevent.sleep(0.4)                               # the refresh is due
    new = h.put("a", *lines(b"new", 2))
    gevent.sleep(0.1)
    # Planned: no new line taken, the connection kept while lines are unconfirmed.
    assert one.bodies("a") == old.lines and not one.closed
    assert h.buffer.held("a") == 2 and h.publisher._session is one
    h.publisher.on_ack("a", 2, True)
    gevent.sleep(0.05)
    assert not one.closed                           # half confirmed: still waiting
    h.publisher.on_ack("a", 4, True)
    two = h.reconnected(2)
    assert one.closed
    # Every later session (refresh keeps coming) carries only the new lines, once.
    until(lambda: sum(len(s.bodies("a")) for s in h.sessions[1:]) >= 2,
          message="the new lines")
    assert [body for s in h.sessions[1:] for body in s.bodies("a")] == new.lines
    assert two.bodies("a") == new.lines
    assert h.confirmed == [old] and h.stats.of("a").published == 6


def test_a_refresh_publishes_unconfirmed_lines_again_only_after_its_wait(harness,
                                                                         monkeypatch):
    """The wait has a bound (REFRESH_CONFIRM_WAIT): lines still unconfirmed then go
    again on the next connection, in order, ahead of newer ones."""
    monkeypatch.setattr(loop, "REFRESH_CONFIRM_WAIT", 0.2)
    h = harness(refresh=0.2, names=("a",))
    old = h.put("a", *lines(b"old", 3))
    one = h.session
    h.published("a", 3)
    h.publisher.on_ack("a", 1, False)               # one line of three: not the batch
    gevent.sleep(0.3)                               # the refresh is due, and waiting
    new = h.put("a", *lines(b"new", 2))
    two = h.reconnected(2)
    assert one.closed and one.bodies("a") == old.lines
    # the acked line is released, not published again (review3: it went again)
    assert h.published("a", 4, two) == old.lines[1:] + new.lines
    assert [batch.lines for batch in h.confirmed] == [old.lines[:1]]


def test_a_removed_inputs_route_is_kept_while_its_lines_are_pending(harness):
    h = harness()
    pending = h.put("b", *lines(b"b", 3))
    one = h.session
    h.published("b", 3)
    assert sorted(one.declared) == ["a", "b"]
    h.publisher.update(h.broker, [settings("a")])   # a reload removes b
    gevent.sleep(0.05)
    assert not one.closed                           # the reload waits for b's confirms
    one.fail()                                      # ... and the connection is lost
    two = h.reconnected(2)
    assert sorted(two.declared) == ["a", "b"], "b's route is gone with lines pending"
    assert h.published("b", 3, two) == pending.lines    # on b's route, in order
    assert {key for _, key, _ in two.messages} == {"b"}
    h.publisher.on_ack("b", 3, True)
    until(lambda: h.confirmed_of("b") == 3, message="b's lines confirmed")
    later = h.put("a", b"a after")
    two.fail()                                      # nothing of b pending any more
    three = h.reconnected(3)
    assert three.declared == ["a"]
    assert h.published("a", 1, three) == later.lines


def test_a_removed_input_with_lines_still_buffered_keeps_its_route(harness):
    """Lines of a removed input that are still in the buffer (or will come from its
    spool, `route_needed`) are published on its route after the reload's reconnect."""
    h = harness()
    h.put("a", b"a 0")
    h.published("a", 1)
    h.publisher.on_ack("a", 1, True)
    h.publisher.route_needed = lambda name: name == "c"     # c's spool still replays
    h.publisher.update(h.broker, [settings("a"), settings("b"), settings("c")])
    two = h.reconnected(2)
    assert sorted(two.declared) == ["a", "b", "c"]
    two.blocked = True                      # connection.blocked: lines stay buffered
    held = h.put("b", b"b held")
    h.publisher.update(h.broker, [settings("a")])   # b and c removed, b's line is held
    three = h.reconnected(3)
    assert two.bodies("b") == []
    assert sorted(three.declared) == ["a", "b", "c"]
    assert h.published("b", 1, three) == held.lines


@pytest.mark.parametrize("confirm, wait", [(True, loop.CLOSE_WAIT),
                                           (False, loop.REFRESH_CONFIRM_WAIT)])
def test_without_confirms_a_refresh_waits_for_the_close_ok_as_for_confirms(
        harness, confirm, wait):
    """The close-ok is the only proof a broker took lines published without confirms;
    a refresh's polite close gives it as long as a planned reconnect gives confirms."""
    h = harness(refresh=0.2, confirm=confirm)
    one = h.session
    h.reconnected(2)
    assert one.closed and one.close_timeout == wait
