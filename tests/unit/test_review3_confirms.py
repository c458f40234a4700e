"""Third hostile review of the confirm path (e7b8551: tags tracked after a nack, riders,
split batches and spool records). A model check drives the Publisher with a fake session
and a broker that stores or refuses each message and answers in any order RabbitMQ may
(single or multiple acks and nacks), with planned retries (also before every fate is
known: the 30 s REFRESH_CONFIRM_WAIT ran out) and connection losses. It found no lost,
reordered or early-confirmed line, no checkpoint or spool position past a line the
broker did not store, and no duplicate without a connection loss. What it did find is
older than e7b8551: a connection loss publishes again the acked lines of a batch not
wholly acked (the xfail below)."""

import logging
import random

import gevent.event
import pytest

from tailrabbit.buffer import LineBuffer
from tailrabbit.line import Batch
from tailrabbit.marks import FilePosition, SpoolPosition
from tailrabbit.publisher.batchframes import make_encoder
from tailrabbit.publisher.loop import Publisher
from tailrabbit.settings import BrokerSettings, InputSettings
from tailrabbit.stats import Stats


class Session:
    def __init__(self):
        self.failed = gevent.event.Event()
        self.address = "127.0.0.1:5672"
        self.heartbeat = 0

    def write(self, data):
        pass


class Broker:
    """What the broker stored: copies per line index, and each tag's fate."""

    def __init__(self, count, rnd, store_p):
        self.copies = [0] * count
        self.excused = set()        # lines whose stored copy was never acked (a loss)
        self.tags = {}              # tag -> (line indexes, stored?)
        self.next = 1
        self.rnd, self.store_p = rnd, store_p

    def passed(self, end):
        missing = [i for i in range(end) if not self.copies[i]]
        assert not missing, f"a mark moved to {end} past lines never stored: {missing}"


class Record:                       # a file's checkpoint record (marks.FilePosition)
    generation, path = 0, "/l/a.log"

    def __init__(self, broker):
        self.broker, self.offset = broker, 0

    def confirm(self, generation, end):
        assert end >= self.offset
        self.broker.passed(end)
        self.offset = end


class Spool:                        # a spool's confirmed position (marks.SpoolPosition)
    def __init__(self, broker):
        self.broker, self.position = broker, 0

    def confirm(self, segment, end):
        assert end >= self.position
        self.broker.passed(end)
        self.position = end


def publisher(batch_lines):
    item = InputSettings(name="a", type="fifo", path="/tmp/a.fifo", queue="a",
                         batch_lines=batch_lines)
    pub = Publisher(BrokerSettings(), [item], LineBuffer(1000), Stats(["a"]))
    pub.released = []

    def confirmed(batch):
        pub.released.extend(int(line) for line in batch.lines)
        if batch.source is not None:
            batch.source.confirmed(batch)
    pub.on_confirmed = confirmed
    pub._session = session = Session()
    pub._encoders = {"a": make_encoder(1, 131072, item)}
    return pub, session


def written(pub, broker):
    """The broker takes the messages just written: stores or refuses each."""
    tracker = pub._trackers._trackers.get("a")
    for last, batch, first in (tracker._in_flight if tracker else ()):
        if first < broker.next:
            continue
        count = len(batch.lines)
        starts = (list(range(count)) if last - first + 1 == count
                  else batch.message_starts)
        for index, tag in enumerate(range(first, last + 1)):
            end = starts[index + 1] if index + 1 < len(starts) else count
            lines = [int(line) for line in batch.lines[starts[index]:end]]
            stored = broker.rnd.random() < broker.store_p
            broker.tags[tag] = (lines, stored)
            for i in lines:
                broker.copies[i] += stored
        broker.next = last + 1


def reconnect(pub, session, broker, lost):
    """What run() does after a session (finally) and at the next connect."""
    if lost:
        for lines, stored in broker.tags.values():
            if stored:
                broker.excused.update(lines)
    pub._keep_unconfirmed()
    pub._parking.retry_all()
    broker.tags, broker.next = {}, 1
    resend, pub._resend = pub._resend, []
    pub._write(session, resend)
    written(pub, broker)


def answer(pub, broker):
    """One ack or nack, single or multiple, as RabbitMQ may send it."""
    rnd, tags = broker.rnd, sorted(broker.tags)
    tag = rnd.choice(tags)
    lines, stored = broker.tags[tag]
    covered = [tag]
    if rnd.random() < 0.4:
        below = [t for t in tags if t <= tag]
        if all(broker.tags[t][1] == stored for t in below):
            covered = below
    for t in covered:
        del broker.tags[t]
    (pub.on_ack if stored else pub.on_nack)("a", tag, len(covered) > 1)


def model_run(seed, batch_lines, origin, losses, store_p=0.6, count=60):
    logging.disable(logging.CRITICAL)
    try:
        return _model_run(seed, batch_lines, origin, losses, store_p, count)
    finally:
        logging.disable(logging.NOTSET)


def _model_run(seed, batch_lines, origin, losses, store_p, count):
    rnd = random.Random(seed)
    broker = Broker(count, rnd, store_p)
    pub, session = publisher(batch_lines)
    record, spool = Record(broker), Spool(broker)
    read = 0
    for _ in range(20000):
        if len(pub.released) == count and not pub._resend:
            break
        roll = rnd.random()
        if roll < 0.3 and read < count and "a" not in pub._parking:
            size = min(rnd.randint(1, 6), count - read)
            lines = [b"%d" % i for i in range(read, read + size)]
            if origin == "file":
                batch = Batch("a", lines, list(range(read, read + size)),
                              source=FilePosition(record), end_offset=read + size)
            else:
                batch = Batch("a", lines, source=SpoolPosition(spool, 0),
                              end_offset=read + size)
            read += size
            pub._write(session, [batch])
            written(pub, broker)
        elif roll < 0.8 and broker.tags:
            answer(pub, broker)
        elif roll < 0.9 and "a" in pub._parking:
            # the retry: once every fate is known, or its 30 s wait ran out first
            if not broker.tags or (losses and rnd.random() < 0.2):
                reconnect(pub, session, broker, lost=bool(broker.tags))
        elif roll < 0.93 and losses:
            reconnect(pub, session, broker, lost=True)
        elif "a" not in pub._parking and pub._resend:
            reconnect(pub, session, broker, lost=False)
    assert pub.released == list(range(count)), "released out of order, twice or never"
    assert all(broker.copies), "a line never stored"
    assert pub._trackers.outstanding == 0 and pub.settled()
    assert pub.stats.of("a").confirmed == count
    return [i for i in range(count) if broker.copies[i] > 1 and i not in broker.excused]


@pytest.mark.parametrize("batch_lines", [1, 3])
@pytest.mark.parametrize("origin", ["file", "spool"])
def test_nacks_in_any_order_lose_reorder_or_repeat_nothing(batch_lines, origin):
    """No connection loss: every line stored exactly once, released in order, marks never
    past a line not stored, counters back to zero (a stop's drain ends)."""
    for seed in range(150):
        assert model_run(seed, batch_lines, origin, losses=False) == [], seed


@pytest.mark.parametrize("batch_lines", [1, 3])
@pytest.mark.parametrize("origin", ["file", "spool"])
def test_with_losses_and_early_retries_nothing_is_lost_or_released_early(batch_lines,
                                                                          origin):
    for seed in range(150):
        model_run(seed, batch_lines, origin, losses=True)


def test_a_connection_loss_does_not_publish_again_lines_the_broker_acked():
    pub, session = publisher(1)
    pub._write(session, [Batch("a", [b"%d" % i for i in range(10)])])    # tags 1-10
    pub.on_ack("a", 6, True)                      # 0-5 stored and confirmed
    pub._keep_unconfirmed()                       # the connection is lost
    assert [line for b in pub._resend for line in b.lines] == [
        b"%d" % i for i in range(6, 10)]
