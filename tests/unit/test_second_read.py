"""Second reading of 700c294 (a nack splits a batch) and fd55552 (a stop with the broker
down spools a file input's lines no file gives again): in-process reproducers."""

import dataclasses
import os

import gevent
import gevent.event

from tailrabbit.buffer import LineBuffer
from tailrabbit.inputs.logfile import FileInput
from tailrabbit.inputset import InputSet
from tailrabbit.line import Batch
from tailrabbit.publisher.frames import RouteEncoder
from tailrabbit.publisher.loop import Publisher
from tailrabbit.settings import BrokerSettings, InputSettings, ProcessSettings
from tailrabbit.spool import Spool
from tailrabbit.stats import Stats


def file_settings(path, **extra):
    extra.setdefault("start_at", "beginning")
    extra.setdefault("rotate_wait", 0.0)
    return InputSettings(name="api", type="file", path=path, queue="q", **extra)


class Collecting:
    """A buffer with room for everything: keeps what file inputs hand on."""

    def __init__(self):
        self.batches = []

    def put(self, batch, block=True, timeout=None):
        self.batches.append(batch)
        return True


# ---- fd55552: a file input with a spool ----------------------------------------------------

def test_a_reload_of_a_file_input_replaying_its_spool_keeps_the_spooled_lines(tmp_path):
    """A stop with the broker down left lines in a file input's spool (a deleted rotated
    file's). At the next start they replay into the buffer; a SIGHUP that changes how the
    input reads restarts it, and restart_file_input drops the input's buffered batches
    ("read again from the checkpoint"): the spool's are among them, and no file gives them
    again. The replay has moved past them, so once the later ones are confirmed the spool's
    position moves past them too: lost."""
    state = str(tmp_path / "state")
    os.makedirs(state)
    log = str(tmp_path / "api.log")
    open(log, "wb").close()
    stats = Stats(["api"])
    spooled = [b"spooled %d" % i for i in range(4)]
    earlier = Spool(state, "api", 1 << 30, LineBuffer(10), stats.of("api"))
    for line in spooled:
        earlier.append(Batch("api", [line]))
    earlier.close()

    buffer = LineBuffer(2)                  # the broker is slow: room for two batches
    inputs = InputSet(ProcessSettings(state_dir=state), buffer, stats, None,
                      lambda message: None)
    settings = file_settings(log)
    inputs.start(inputs.create(settings))
    try:
        gevent.sleep(0.2)
        assert buffer.lines == 2            # two replayed, the replay waits for room
        inputs.restart_file_input(dataclasses.replace(settings, max_line_bytes=4096),
                                  lambda name: True)
        shipped = []
        for _ in range(20):                 # the publisher: take, publish, confirm
            gevent.sleep(0.02)
            for batch in buffer.take(100):
                shipped.extend(batch.lines)
                if batch.source is not None:
                    batch.source.confirmed(batch)
        inputs.save_checkpoints()
        again = Spool(state, "api", 1 << 30, LineBuffer(10), stats.of("api"))
        left = again.holds_lines()
        assert shipped == spooled, (
            f"shipped {shipped}; the spool still holds lines for a next start: {left}")
    finally:
        inputs.stop_readers()
        inputs.stop_replays()
        inputs.close_spools()


def test_a_file_the_pattern_no_longer_matches_is_not_read_at_the_next_start(tmp_path):
    """`path = logs/*.log` narrowed to `logs/api.log` (a restart, or a SIGHUP: the input
    is restarted and loads its checkpoints again). other.log keeps its record for three
    days; it is still at its path, grew since, and is not matched: _recover_rotated
    now drains it from its checkpoint, as if it were a copytruncate copy, and keeps
    reading it while it grows."""
    state = str(tmp_path / "state")
    logs = tmp_path / "logs"
    logs.mkdir()
    api, other = str(logs / "api.log"), str(logs / "other.log")
    with open(api, "wb") as handle:
        handle.write(b"api 1\n")
    with open(other, "wb") as handle:
        handle.write(b"other 1\n")
    first_buffer = Collecting()
    first = FileInput(file_settings(str(logs / "*.log")), first_buffer, Stats(["api"]), state)
    first.start(1.0)
    first.poll(1.0)
    for batch in first_buffer.batches:
        batch.source.confirmed(batch)
    first.save_checkpoints()
    first.close()
    with open(other, "ab") as handle:
        handle.write(b"other 2\n")           # written after other.log left the pattern

    buffer = Collecting()
    second = FileInput(file_settings(api), buffer, Stats(["api"]), state)
    second.start(2.0)
    second.poll(2.0)
    with open(other, "ab") as handle:
        handle.write(b"other 3\n")
    second.poll(3.0)
    second.close()
    shipped = [(batch.path, line) for batch in buffer.batches for line in batch.lines]
    assert [item for item in shipped if item[0] == other] == [], shipped


def test_a_file_input_with_overflow_drop_behind_its_spool_repeats_nothing(tmp_path):
    """A file input (overflow = drop) whose spool holds lines of an earlier stop: while
    the spool replays, Input._hand_on appends the FILE's new batches to the spool (the
    'drop' branch). Replayed, they confirm the spool, never the file's checkpoint, so the
    next start reads them again from the file: shipped twice without a fault."""
    state = str(tmp_path / "state")
    os.makedirs(state)
    log = str(tmp_path / "api.log")
    with open(log, "wb") as handle:
        handle.write(b"file 1\nfile 2\n")
    stats = Stats(["api"])
    earlier = Spool(state, "api", 1 << 30, LineBuffer(10), stats.of("api"))
    earlier.append(Batch("api", [b"spooled 0"]))
    earlier.close()

    buffer = LineBuffer(1000)
    spool = Spool(state, "api", 1 << 30, buffer, stats.of("api"))
    assert spool.holds_lines()             # not replayed yet (the broker is slow to come)
    item = FileInput(file_settings(log, overflow="drop"), buffer, stats, state, spool=spool)
    item.start(1.0)
    replay = gevent.spawn(spool.replay_forever)
    item.poll(1.0)                          # the file's lines wait behind the spool
    shipped = []
    try:
        for _ in range(20):
            gevent.sleep(0.02)
            for batch in buffer.take(100):
                shipped.extend(batch.lines)
                if batch.source is not None:
                    batch.source.confirmed(batch)
        spool.save_position()
        item.save_checkpoints()
        item.close()
    finally:
        replay.kill()
        spool.close()
    assert shipped == [b"spooled 0", b"file 1", b"file 2"]

    again = Collecting()                    # the next start (everything was confirmed)
    restarted = FileInput(file_settings(log, overflow="drop"), again, Stats(["api"]), state)
    restarted.start(2.0)
    restarted.poll(2.0)
    restarted.close()
    read_again = [line for batch in again.batches for line in batch.lines]
    assert read_again == [], f"confirmed, then read again from the file: {read_again}"


# ---- 700c294: a nack inside a batch -----------------------------------------------------

def publisher(name):
    item = InputSettings(name=name, type="fifo", path=f"/tmp/{name}.fifo", queue=name)
    pub = Publisher(BrokerSettings(), [item], LineBuffer(1000), Stats([name]))
    pub.confirmed = []
    pub.on_confirmed = pub.confirmed.append

    class Session:
        failed = gevent.event.Event()
        address = "127.0.0.1:5672"
        heartbeat = 0

        def write(self, data):
            pass
    session = Session()
    pub._session = session
    pub._encoders = {name: RouteEncoder(1, 131072, item)}
    return pub, session


def test_a_line_acked_after_the_nack_of_an_earlier_one_is_not_published_again():
    """A queue at its reject-publish limit with a consumer: line 5 is nacked, a place
    frees, line 6 is stored and acked. Line 6 is confirmed by the broker ('duplicates only
    of unconfirmed lines', README): it must not go again at the retry, yet be released
    only after line 5 (once published again and confirmed)."""
    pub, session = publisher("a")
    whole = Batch("a", [b"a %d" % i for i in range(1, 11)])
    pub._write(session, [whole])             # tags 1-10
    pub.on_nack("a", 5, False)
    pub.on_ack("a", 6, False)                # stored after the nack
    pub.on_ack("a", 4, True)
    pub.on_nack("a", 10, True)               # 7-10 refused: every tag's fate is known
    again = [line for batch in pub._resend for line in batch.lines]
    assert b"a 5" in again
    assert b"a 6" not in again, f"published again at the retry: {again}"
    confirmed = [line for batch in pub.confirmed for line in batch.lines]
    assert b"a 6" not in confirmed, "confirmed before line 5"


def test_a_deleted_files_batch_blocked_on_a_full_buffer_at_a_stop_is_spooled(tmp_path):
    """Broker down long enough to fill the buffer: the file input (block) waits in
    buffer.put with a batch; its file is deleted meanwhile (compress without
    delaycompress). At the stop the kill lands in put: FileInput.spill does nothing ('read
    again from the checkpoint'), and spool_undelivered only looks at the buffer and the
    publisher. No file gives these lines again: they are in no spool, lost."""
    state = str(tmp_path / "state")
    os.makedirs(state)
    log = str(tmp_path / "api.log")
    with open(log, "wb") as handle:
        handle.write(b"line 1\nline 2\n")
    stats = Stats(["api", "other"])
    buffer = LineBuffer(1)
    assert buffer.put(Batch("other", [b"x"]))          # full
    inputs = InputSet(ProcessSettings(state_dir=state), buffer, stats, None,
                      lambda message: None)
    inputs.start(inputs.create(file_settings(log)))
    gevent.sleep(0.2)                                   # read; waiting for room
    os.unlink(log)                                      # compressed away
    inputs.stop_readers()
    inputs.spool_undelivered([])
    inputs.close_spools()
    spool = Spool(state, "api", 1 << 30, LineBuffer(10), stats.of("api"))
    assert spool.holds_lines(), "line 1 and line 2 are in no file and no spool"


def test_a_multiple_nack_does_not_publish_again_the_lines_acked_before_it():
    """basic.nack with multiple = true refuses every tag up to it NOT yet confirmed; tags
    acked already stay stored. on_nack took from tag 1 for a multiple nack (no split, the
    whole batch set aside), so lines 1-4, acked by a multiple ack just before, went
    again."""
    pub, session = publisher("a")
    whole = Batch("a", [b"a %d" % i for i in range(1, 11)])
    pub._write(session, [whole])             # tags 1-10
    pub.on_ack("a", 4, True)                 # 1-4 stored and confirmed
    pub.on_nack("a", 6, True)                # 5-6 refused
    pub.on_nack("a", 10, True)               # 7-10 too: every tag's fate is known
    again = [line for batch in pub._resend for line in batch.lines]
    confirmed = [line for batch in pub.confirmed for line in batch.lines]
    assert again[:1] == [b"a 5"] and confirmed == [b"a %d" % i for i in range(1, 5)], (
        f"published again: {again}; confirmed: {confirmed}")
