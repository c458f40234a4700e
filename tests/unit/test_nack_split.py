"""A nack inside what was published, with a fake session: the channel's tags stay tracked
until each is acked or nacked, then only the lines not acked go again, in order; lines
stored after a refused one are released right after it (never published again, never
confirmed before it). Batched messages and spool records are split at the refused
message's first line."""

import gevent.event

from tailrabbit.buffer import LineBuffer
from tailrabbit.line import Batch
from tailrabbit.marks import FilePosition, PartOfRecord, SpoolPosition
from tailrabbit.publisher.batchframes import make_encoder
from tailrabbit.publisher.confirms import ConfirmTracker
from tailrabbit.publisher.loop import Publisher
from tailrabbit.settings import BrokerSettings, InputSettings
from tailrabbit.stats import Stats


class Session:
    def __init__(self):
        self.failed = gevent.event.Event()
        self.address = "127.0.0.1:5672"
        self.heartbeat = 0
        self.written = 0

    def write(self, data):
        self.written += 1


def publisher(name="a", **extra):
    item = InputSettings(name=name, type="fifo", path=f"/tmp/{name}.fifo", queue=name,
                         **extra)
    pub = Publisher(BrokerSettings(), [item], LineBuffer(1000), Stats([name]))
    pub.confirmed = []

    def confirmed(batch):               # what the daemon does (Daemon._on_confirmed)
        pub.confirmed.append(batch)
        if batch.source is not None:
            batch.source.confirmed(batch)
    pub.on_confirmed = confirmed
    session = Session()
    pub._session = session
    pub._encoders = {name: make_encoder(1, 131072, item)}
    return pub, session


def lines_of(batches):
    return [line for batch in batches for line in batch.lines]


def released(pub):
    """The lines confirmed, riders included, in the order they were released."""
    return lines_of(pub.confirmed)


def retry(pub, session):
    """What a retry does: a new connection (a new channel, tags from 1), the parked
    input retried, its lines set aside published first."""
    pub._parking.retry_all()
    pub._trackers = type(pub._trackers)()
    resend, pub._resend = pub._resend, []
    pub._write(session, resend)


def numbered(count, prefix=b"a"):
    return [b"%s %d" % (prefix, i) for i in range(1, count + 1)]


def test_a_line_stored_after_a_nacked_one_rides_on_it_and_is_released_after_it():
    pub, session = publisher()
    whole = Batch("a", numbered(10))
    pub._write(session, [whole])                        # tags 1-10
    pub.on_nack("a", 5, False)
    assert pub._trackers.outstanding == 10              # a retry waits for 6-10's fate
    assert pub._resend == []
    pub.on_ack("a", 6, False)                           # a consumer made room
    pub.on_ack("a", 4, True)
    assert released(pub) == numbered(4)                 # the head, acked before 5
    pub.on_nack("a", 10, True)                          # 7-10 refused (6 stays acked)
    assert pub._trackers.outstanding == 0
    assert [b.lines for b in pub._resend] == [[b"a 5"], numbered(10)[6:]]
    assert lines_of(pub._resend[0].riders) == [b"a 6"]
    assert pub.stats.of("a").confirmed == 4             # 6: not before 5 is
    # the retry: a new connection publishes 5 and 7-10 only, and 6 follows 5
    retry(pub, session)                                 # tags 1-5 of a new channel
    assert pub._trackers.outstanding == 5
    pub.on_ack("a", 5, True)
    assert released(pub) == numbered(10)
    assert pub.stats.of("a").confirmed == 10 and pub.stats.of("a").published == 15


def test_a_nack_in_the_middle_of_batched_messages_splits_at_that_messages_first_line():
    pub, session = publisher(batch_lines=3)
    whole = Batch("a", numbered(10), offsets=list(range(0, 100, 10)), truncated={4, 7},
                  source=FilePosition(_Record()), end_offset=100)
    pub._write(session, [whole])                        # 4 messages: 1-3 4-6 7-9 10
    assert whole.message_starts == [0, 3, 6, 9]
    pub.on_nack("a", 2, False)                          # lines 4-6 refused
    pub.on_ack("a", 1, False)
    head, = pub.confirmed                               # the stored message before it
    assert head.lines == numbered(3) and head.end_offset == 30
    assert head.source is whole.source and head.truncated is None
    assert whole.source.record.offset == 30             # the checkpoint moved to it
    pub.on_ack("a", 3, False)                           # 7-9 stored anyway
    pub.on_nack("a", 4, False)
    refused, last = pub._resend
    assert refused.lines == numbered(10)[3:6] and refused.offsets == [30, 40, 50]
    assert refused.end_offset == 60 and refused.truncated == {1}
    assert last.lines == [b"a 10"] and last.end_offset == 100
    rider, = refused.riders
    assert rider.lines == numbered(10)[6:9] and rider.truncated == {1}
    assert rider.end_offset == 90
    assert whole.source.record.offset == 30             # nothing past the refused lines
    # again, as messages of three lines (4-6, 10): only the refused ones
    retry(pub, session)
    pub.on_ack("a", 1, False)
    assert whole.source.record.offset == 90             # 4-6, then 7-9 riding on them
    pub.on_ack("a", 2, False)
    assert released(pub) == numbered(10) and whole.source.record.offset == 100


def test_a_multiple_nack_refuses_only_the_tags_not_yet_acked():
    pub, session = publisher()
    pub._write(session, [Batch("a", numbered(5)), Batch("a", numbered(5, b"b"))])
    pub.on_ack("a", 2, True)
    pub.on_ack("a", 4, False)                           # stored, beyond acked_upto
    pub.on_nack("a", 6, True)                           # 3, 5, 6 refused; 4 stays acked
    assert released(pub) == numbered(2)
    pub.on_ack("a", 8, True)                            # 7-8 stored, 5-6 stay refused
    pub.on_nack("a", 9, False)
    assert pub._resend == []                            # 10 still to come
    pub.on_ack("a", 10, True)
    assert [b.lines for b in pub._resend] == [[b"a 3"], [b"a 5"], [b"b 1"], [b"b 4"]]
    assert [lines_of(b.riders or []) for b in pub._resend] == [
        [b"a 4"], [], [b"b 2", b"b 3"], [b"b 5"]]


def test_a_spool_record_is_split_and_moves_the_spool_only_with_its_last_part():
    spool = _Spool()
    record = Batch("a", numbered(6), source=SpoolPosition(spool, 7), end_offset=600)
    pub, session = publisher(batch_lines=2)
    pub._write(session, [record])                       # 3 messages: 1-2 3-4 5-6
    pub.on_nack("a", 2, False)
    pub.on_ack("a", 1, False)
    head, = pub.confirmed
    assert head.lines == numbered(2) and isinstance(head.source, PartOfRecord)
    assert spool.confirmed == []                        # not the record: 3-6 not stored
    pub.on_nack("a", 3, False)
    refused, = pub._resend
    assert refused.lines == numbered(6)[2:] and refused.source is record.source
    assert refused.end_offset == 600
    retry(pub, session)                                 # 2 messages: 3-4 5-6
    pub.on_nack("a", 2, False)                          # 5-6 refused again
    pub.on_ack("a", 1, False)
    assert spool.confirmed == [] and released(pub) == numbered(4)
    assert [b.lines for b in pub._resend] == [numbered(6)[4:]]
    retry(pub, session)
    pub.on_ack("a", 1, False)
    assert spool.confirmed == [(7, 600)] and released(pub) == numbered(6)


def test_a_spool_records_stored_end_rides_on_its_refused_middle():
    spool = _Spool()
    record = Batch("a", numbered(3), source=SpoolPosition(spool, 1), end_offset=30)
    pub, session = publisher()
    pub._write(session, [record, Batch("a", [b"live"])])
    pub.on_nack("a", 2, False)
    pub.on_ack("a", 4, True)                            # 1, 3 and the live line stored
    refused, = pub._resend
    assert refused.lines == [b"a 2"] and isinstance(refused.source, PartOfRecord)
    assert [r.lines for r in refused.riders] == [[b"a 3"], [b"live"]]
    assert refused.riders[0].source is record.source and spool.confirmed == []
    retry(pub, session)
    pub.on_ack("a", 1, False)
    assert spool.confirmed == [(1, 30)]
    assert released(pub) == numbered(3) + [b"live"]


def test_a_connection_lost_before_every_fate_is_known_publishes_all_not_acked():
    tracker = ConfirmTracker()
    first, second = Batch("a", numbered(4)), Batch("a", numbered(4, b"b"))
    tracker.add(first)
    tracker.add(second)                                 # tags 1-8
    set_aside = []
    assert tracker.nack(3, False, set_aside.extend) == ([], 6)
    assert tracker.ack(6, False) == []
    assert tracker.ack(2, True)[0].lines == numbered(2)
    batches = tracker.take_all()                        # 4, 5, 7, 8 unknown; 3 refused
    assert set_aside == [] and tracker.outstanding == 0
    assert [b.lines for b in batches] == [[b"a 3", b"a 4"], [b"b 1"], [b"b 3", b"b 4"]]
    assert [lines_of(b.riders or []) for b in batches] == [[], [b"b 2"], []]


def test_a_batch_whose_messages_are_unknown_is_not_split_and_goes_again_whole():
    tracker = ConfirmTracker()
    piped = Batch("a", numbered(5))
    tracker.add(piped, messages=2)                      # no message_starts: not batchframes
    set_aside = []
    assert tracker.nack(2, False, set_aside.extend) == ([], 5)
    assert tracker.ack(1, False) == []
    assert set_aside == [piped]


def test_a_nack_below_an_earlier_one_splits_the_lines_kept_for_their_acks():
    pub, session = publisher()
    first, second = Batch("a", numbered(10)), Batch("a", numbered(10, b"b"))
    pub._write(session, [first, second])                # tags 1-10, 11-20
    pub.on_nack("a", 15, False)
    pub.on_nack("a", 5, False)
    pub.on_ack("a", 4, True)
    assert released(pub) == numbered(4)
    pub.on_ack("a", 14, True)                           # 6-14 stored after 5
    pub.on_ack("a", 20, True)                           # 16-20 too
    refused, again = pub._resend
    assert refused.lines == [b"a 5"] and again.lines == [b"b 5"]
    assert lines_of(refused.riders) == numbered(10)[5:] + numbered(4, b"b")
    assert lines_of(again.riders) == numbered(10, b"b")[5:]


class _Record:
    generation = 0
    path = "/l/a.log"
    offset = 0

    def confirm(self, generation, end_offset):
        self.offset = max(self.offset, end_offset)


class _Spool:
    def __init__(self):
        self.confirmed = []

    def confirm(self, segment, end):
        self.confirmed.append((segment, end))
