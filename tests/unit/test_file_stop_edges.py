"""In-process, with explicit time: a file input stopped while it reads a copytruncate copy,
and a file input removed by SIGHUP, then a stop with the broker down
(tests/integration/test_file_stop_edges.py runs both against the broker).

The reader greenlet runs only when the test yields, so "stopped in the middle of the
copy" is exact: a buffer with room for 5 lines and no publisher blocks the reader on the
copy's second read (256 KiB each)."""

import os
import shutil

import gevent

from tailrabbit.buffer import LineBuffer
from tailrabbit.files.checkpoints import CheckpointStore
from tailrabbit.inputs.logfile import FileInput
from tailrabbit.inputset import InputSet
from tailrabbit.settings import InputSettings, ProcessSettings
from tailrabbit.spool import Spool
from tailrabbit.stats import Stats

from unit.test_logfile_model import ConfirmingBuffer


def settings(path):
    return InputSettings(name="api", type="file", path=path, queue="q",
                         start_at="beginning", rotate_wait=0.0)


def append(path, lines):
    with open(path, "ab") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))


def until(predicate, timeout=10.0):
    """Yield to the reader greenlets until `predicate()` holds."""
    with gevent.Timeout(timeout, AssertionError("timed out")):
        while not predicate():
            gevent.sleep(0.001)


def blocked(item, buffer):
    """The reader read more than the buffer holds: it waits in put with a batch."""
    return buffer.lines >= buffer.capacity and item.stats.read > buffer.lines


def copytruncate(path, big):
    append(path, big)                         # unread when the copy is taken
    shutil.copyfile(path, path + ".1")
    os.truncate(path, 0)
    append(path, [b"after"])


def read_all(state, path):
    """A next start with a broker that confirms everything: the lines it ships."""
    buffer = ConfirmingBuffer()
    item = FileInput(settings(path), buffer, Stats(["api"]), state)
    item.start(10.0)
    for now in (10.0, 11.0, 12.0):
        item.poll(now)
    item.close()
    return buffer.lines


def test_a_stop_in_the_middle_of_a_copy_leaves_its_rest_where_the_next_start_reads(tmp_path):
    """Nothing is spooled (the copy gives every line again); the file's checkpoint went
    on in the copy under the file's path; the next start reads the copy from it, then the
    truncated file: every line once, in order."""
    state, path = str(tmp_path / "state"), str(tmp_path / "api.log")
    head = [b"line %d" % i for i in range(10)]
    big = [b"copy %05d %s" % (i, b"x" * 90) for i in range(8000)]      # 800 KB
    append(path, head)
    buffer = LineBuffer(5)
    item = FileInput(settings(path), buffer, Stats(["api"]), state)
    item.start(1.0)
    item.poll(1.0)                            # 10 lines read, held: the broker is away
    copytruncate(path, big)
    reader = gevent.spawn(item.poll, 2.0)
    until(lambda: blocked(item, buffer))      # on the copy's first read
    reader.kill()
    held = buffer.remove_input("api") + item.spilled
    assert item.not_readable_again(held) == []
    item.save_checkpoints()
    item.close()
    store = CheckpointStore(state, "api")
    store.load()
    copy = os.stat(path + ".1")
    record = store.records[(copy.st_dev, copy.st_ino)]
    assert (record.path, record.offset) == (path, 0)
    assert read_all(state, path) == head + big + [b"after"]


def test_a_stop_in_the_middle_of_a_copy_found_at_start_leaves_its_rest_too(tmp_path):
    """The copytruncate happened while tailrabbit was stopped; the next start reads the
    copy from the checkpoint (_recover_rotated) and is stopped in the middle of it: the
    start after that reads on from there (before: the copy had a record under its own
    name, which nothing reads: its rest was lost)."""
    state, path = str(tmp_path / "state"), str(tmp_path / "api.log")
    head = [b"line %d" % i for i in range(10)]
    big = [b"copy %05d %s" % (i, b"x" * 90) for i in range(8000)]
    append(path, head)
    first = FileInput(settings(path), ConfirmingBuffer(), Stats(["api"]), state)
    first.start(1.0)
    first.poll(1.0)
    first.save_checkpoints()
    first.close()
    copytruncate(path, big)
    buffer = LineBuffer(5)
    second = FileInput(settings(path), buffer, Stats(["api"]), state)
    reader = gevent.spawn(lambda: (second.start(2.0), second.poll(2.0)))   # start reads it
    until(lambda: blocked(second, buffer))
    reader.kill()
    taken = buffer.take(1000)                 # the copy's first read
    for batch in taken[:1]:                   # the broker confirmed the first read
        batch.source.confirmed(batch)
    assert second.not_readable_again(taken[1:] + second.spilled) == []
    second.save_checkpoints()
    second.close()
    confirmed = len(taken[0].lines)
    assert read_all(state, path) == big[confirmed:] + [b"after"]


def test_a_copy_read_to_its_end_is_not_taken_for_a_copy_of_itself(tmp_path):
    """The copy's record keeps the file's path. Read to its end, it is found by identity
    at the next start and nothing is read; a newer copy starting with the same bytes (a
    constant header) is not taken for its copy."""
    state, path = str(tmp_path / "state"), str(tmp_path / "api.log")
    header = [b"#header %03d %s" % (i, b"h" * 40) for i in range(8)]     # > 256 bytes
    append(path, header + [b"one"])
    first = FileInput(settings(path), ConfirmingBuffer(), Stats(["api"]), state)
    first.start(1.0)
    first.poll(1.0)
    copytruncate(path, [b"two"])
    first.poll(2.0)
    first.save_checkpoints()
    first.close()
    os.rename(path + ".1", path + ".2")       # the next copytruncate, while stopped
    append(path, [b"three"])
    shutil.copyfile(path, path + ".1")
    with open(path + ".1", "r+b") as copy:    # the same header, then more than the old
        copy.seek(0)
        copy.write(b"".join(line + b"\n" for line in header + [b"y"] * 300))
    assert read_all(state, path) == [b"three"]


# ---- a file input removed by SIGHUP, then a stop with the broker down -------------------

def input_set(state, buffer):
    return InputSet(ProcessSettings(state_dir=state), buffer, Stats(["api"]), None,
                    lambda message: None)


def test_a_removed_file_inputs_lines_of_a_deleted_file_are_spooled_at_the_stop(tmp_path,
                                                                               caplog):
    """Before, nothing judged a removed input's lines: counted in stopped_unconfirmed,
    and lost with their file."""
    state, path = str(tmp_path / "state"), str(tmp_path / "api.log")
    os.makedirs(state)
    append(path, [b"line 1", b"line 2"])
    buffer = LineBuffer(100)
    inputs = input_set(state, buffer)
    inputs.start(inputs.create(settings(path)))
    until(lambda: buffer.lines == 2)
    inputs.remove("api")
    os.rename(path, path + ".1")              # compress without delaycompress
    os.unlink(path + ".1")
    inputs.stop_readers()
    inputs.spool_undelivered([])
    inputs.close_spools()
    assert [r.fields["count"] for r in caplog.records
            if getattr(r, "event", None) == "unconfirmed_spooled"] == [2]
    spool = Spool(state, "api", 1 << 30, LineBuffer(10), Stats(["api"]).of("api"))
    assert spool.holds_lines()


def test_a_removed_file_inputs_lines_still_in_their_file_stay_there(tmp_path, caplog):
    """Not spooled: they are in the file, behind the checkpoint. Counted in
    stopped_unconfirmed. The input added back adopts the removed one's live checkpoints:
    it does not read them again (before: read twice, 4 lines buffered)."""
    state, path = str(tmp_path / "state"), str(tmp_path / "api.log")
    os.makedirs(state)
    append(path, [b"line 1", b"line 2"])
    buffer = LineBuffer(100)
    inputs = input_set(state, buffer)
    inputs.start(inputs.create(settings(path)))
    until(lambda: buffer.lines == 2)
    inputs.remove("api")
    inputs.add(settings(path))                # added back by a later SIGHUP
    until(lambda: path in inputs.inputs["api"]._tailers)     # it polled: file open
    assert buffer.lines == 2 and not inputs.retired
    inputs.stop_readers()
    inputs.spool_undelivered([])
    inputs.close_spools()
    assert not os.path.exists(os.path.join(state, "spool", "api"))
    assert [r.fields["count"] for r in caplog.records
            if getattr(r, "event", None) == "stopped_unconfirmed"] == [2]
