"""Pure logic of the publisher around failing routes and reloads, with a fake session:
parking and its backoff, which batches wait and which are released after a nack or a
return, routes kept for removed inputs, the reconnect decision of a reload, and heartbeats
while a planned reconnect waits for confirms."""

import logging
import time

import pytest
from gevent.event import Event

from tailrabbit.buffer import LineBuffer
from tailrabbit.line import Batch
from tailrabbit.publisher import loop
from tailrabbit.publisher.frames import RouteEncoder
from tailrabbit.publisher.loop import Publisher
from tailrabbit.publisher.parking import Parking
from tailrabbit.publisher.routes import reconnect_reason
from tailrabbit.settings import BrokerSettings, InputSettings
from tailrabbit.stats import Stats


class FakeSession:
    def __init__(self, heartbeat=0):
        self.failed = Event()
        self.error = None
        self.heartbeat = heartbeat
        self.written = []
        self.heartbeats = []
        self.channels = {}
        self.address = "127.0.0.1:5672"

    def write(self, data):
        self.written.append(data)

    def send_heartbeat(self):
        self.heartbeats.append(time.monotonic())

    def answer_closed_channels(self):
        pass


def settings(name, **extra):
    extra.setdefault("queue", name)
    return InputSettings(name=name, type="fifo", path=f"/tmp/{name}.fifo", **extra)


def publisher(*names, heartbeat=0):
    inputs = [settings(name) for name in names]
    pub = Publisher(BrokerSettings(), inputs, LineBuffer(1000), Stats(names))
    pub.confirmed = []
    pub.on_confirmed = pub.confirmed.append
    session = FakeSession(heartbeat)
    pub._session = session
    pub._encoders = {item.name: RouteEncoder(n + 1, 131072, item)
                     for n, item in enumerate(inputs)}
    return pub, session


def batch(name, n, first=0):
    return Batch(name, [b"%s %d" % (name.encode(), i) for i in range(first, first + n)])


# ---- Parking --------------------------------------------------------------------------

def test_parking_backs_off_per_input_until_a_line_is_confirmed():
    now = [100.0]
    parking = Parking(2.0, 60.0, clock=lambda: now[0])
    first = parking.park("a", "nack")
    assert 1.0 <= first <= 2.0 and "a" in parking and parking.retry_at == 100.0 + first
    assert parking.park("a", "again") == pytest.approx(first)     # parked: unchanged
    parking.retry_all()
    assert "a" not in parking and parking.retry_at is None
    assert 2.0 <= parking.park("a", "nack") <= 4.0                # failed again: longer
    parking.retry_all()
    parking.confirmed("a")                                        # its route works again
    assert 1.0 <= parking.park("a", "nack") <= 2.0


# ---- nacks, returns, channel errors: only the failing input waits -------------------------

def test_a_nack_parks_its_input_and_is_never_confirmed():
    pub, session = publisher("good", "bad")
    good1, bad1, bad2, good2 = batch("good", 3), batch("bad", 2), batch("bad", 2, 2), \
        batch("good", 3, 3)
    pub._write(session, [good1, bad1, bad2, good2])
    pub.on_ack("bad", 1, False)
    pub.on_nack("bad", 2, False)                 # bad1's second line was not stored
    pub.on_ack("bad", 4, True)                   # bad2 was: it waits for bad1's second
    pub.on_ack("good", 6, True)
    # bad1's first line was stored and acked: confirmed; its second goes again
    assert [b.lines for b in pub.confirmed] == [bad1.lines[:1], good1.lines, good2.lines]
    assert "bad" in pub._parking
    assert [b.lines for b in pub._resend] == [bad1.lines[1:]]
    assert pub._resend[0].riders == [bad2]       # released right after it, not resent
    bad3 = batch("bad", 1, 4)
    pub._write(session, [bad3, batch("good", 1, 6)])
    assert [b.lines for b in pub._resend] == [bad1.lines[1:], bad3.lines]
    # never published while parked, in order


def test_the_ack_after_a_return_does_not_confirm_the_line():
    pub, session = publisher("good", "bad")
    bad1, good1 = batch("bad", 1), batch("good", 1)
    pub._write(session, [bad1, good1])
    pub.on_return("bad", None, "ex", "rk", None)
    pub.on_ack("bad", 1, False)                  # the broker acks a returned line
    pub.on_ack("good", 1, False)
    assert pub.confirmed == [good1]
    assert pub._resend == [bad1] and "bad" in pub._parking


def test_a_channel_error_parks_only_its_input(caplog):
    pub, session = publisher("good", "bad")
    pub._write(session, [batch("bad", 2), batch("good", 2)])
    error = __import__("amqp").exceptions.PreconditionFailed(
        "PRECONDITION_FAILED - message size 5000 is larger than configured max size 4096")
    with caplog.at_level(logging.ERROR):
        pub.on_channel_closed("bad", error)
    assert "input bad parked" in caplog.text and "max size 4096" in caplog.text
    assert pub._trackers.outstanding == 2        # good's lines still await their acks
    assert not session.failed.is_set()


# ---- removed inputs (item 6) ----------------------------------------------------------

def test_a_removed_input_keeps_its_route_while_its_spool_needs_it():
    pub, session = publisher("kept", "gone")
    spool_holds = {"gone": True}
    pub.route_needed = lambda name: spool_holds.get(name, False)
    pub.update(pub.broker, [settings("kept")])
    assert set(pub._routes()) == {"kept", "gone"}
    spool_holds["gone"] = False
    assert set(pub._routes()) == {"kept"}


def test_a_batch_of_an_input_without_a_route_waits_instead_of_crashing(caplog):
    pub, session = publisher("kept")
    orphan1, kept, orphan2 = batch("gone", 2), batch("kept", 1), batch("gone", 1, 2)
    with caplog.at_level(logging.ERROR):
        pub._write(session, [orphan1, kept, orphan2])      # KeyError before
    assert "input gone parked: no such input" in caplog.text
    assert pub._resend == [orphan1, orphan2]
    assert pub._trackers.outstanding == 1 and session.written


def test_a_removed_input_whose_lines_turn_up_late_gets_its_route_back(caplog):
    pub, session = publisher("kept", "gone")
    pub.update(pub.broker, [settings("kept")])
    assert set(pub._routes()) == {"kept"}               # nothing of gone pending
    pub._encoders.pop("gone")                           # the next connection has no route
    late = batch("gone", 1)
    with caplog.at_level(logging.ERROR):
        pub._write(session, [late])                     # e.g. its spool replays
    assert "input gone parked: no route on this connection" in caplog.text
    assert pub._resend == [late]
    assert pub._routes()["gone"] == settings("gone")    # declared again at the retry


# ---- reloads (item 11) ----------------------------------------------------------------

def test_a_reload_reconnects_only_when_a_route_or_the_broker_changes():
    old = {"a": settings("a"), "b": settings("b")}
    broker = BrokerSettings()
    assert reconnect_reason(broker, old, BrokerSettings(), dict(old)) is None
    reading = {**old, "a": settings("a", overflow="drop", max_line_bytes=10,
                                    start_at="beginning", rotate_wait=1.0)}
    assert reconnect_reason(broker, old, broker, reading) is None
    for change in ({"queue": "other"}, {"exchange": "ex"}, {"routing_key": "rk"},
                   {"durable": False}, {"auto_delete": True}, {"delivery_mode": 1},
                   {"arguments": (("x-max-length", 5),)}):
        assert "route changed a" in reconnect_reason(
            broker, old, broker, {**old, "a": settings("a", **change)}), change
    assert "added c" in reconnect_reason(broker, old, broker, {**old, "c": settings("c")})
    assert "removed b" in reconnect_reason(broker, old, broker, {"a": old["a"]})
    assert reconnect_reason(broker, old, BrokerSettings(heartbeat=5), old)


def test_an_unchanged_reload_does_not_ask_for_a_reconnect():
    pub, session = publisher("a")
    pub.update(BrokerSettings(), [settings("a")])
    assert not pub._reconnect_now
    pub.update(BrokerSettings(), [settings("a", queue="other")])
    assert pub._reconnect_now


# ---- heartbeats during a planned reconnect (item 12) -----------------------------------

def test_a_planned_reconnect_keeps_sending_heartbeats_while_it_waits(monkeypatch):
    monkeypatch.setattr(loop, "REFRESH_CONFIRM_WAIT", 2.2)
    pub, session = publisher("a", heartbeat=1)
    pub._write(session, [batch("a", 5)])          # never confirmed: it waits it all out
    started = time.monotonic()
    pub._last_write = started
    pub._finish_planned(session)
    ended = time.monotonic()
    beats = [started] + session.heartbeats + [ended]
    gaps = [b - a for a, b in zip(beats, beats[1:])]
    assert session.heartbeats, "no heartbeat in 2.2 s with a 1 s heartbeat"
    assert max(gaps) <= 1.0, gaps                 # one per interval at least


def test_a_later_nack_of_lines_kept_for_their_acks_sets_them_before_the_parked_ones():
    """A nack of tag 15 parks the input; the lines before it wait for their acks, and
    every tag's fate is awaited. If one of them is nacked too, it and the rest of the
    kept ones go before the lines buffered since: the input's lines keep their order."""
    pub, session = publisher("a")
    first, second = batch("a", 10), batch("a", 10)
    pub._write(session, [first, second])                  # tags 1-10, 11-20
    pub.on_nack("a", 15, False)                           # split: 11-14 wait for acks
    assert pub._resend == [] and "a" in pub._parking
    later = batch("a", 1, 20)
    pub._write(session, [later])                          # parked: set aside
    pub.on_nack("a", 5, False)                            # 5 and on refused
    pub.on_ack("a", 4, True)
    pub.on_nack("a", 20, True)
    assert [b.lines for b in pub._resend] == [first.lines[4:], second.lines[:4],
                                               second.lines[4:], later.lines]
