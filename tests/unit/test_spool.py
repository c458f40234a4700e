import errno
import logging
import os
import signal
import stat
import subprocess
import time

import gevent
import pytest

import tailrabbit.spool.store as spool_module
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
            batch.source.confirmed(batch)
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
    first.source.confirmed(first)
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


# ---- a full or read-only disk (issue 8 item 3) ---------------------------------------

@pytest.fixture
def tmpfs(tmp_path):
    """A real 1 MiB tmpfs (tests run as root); skipped where mounting is not permitted."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs",
                             str(mount_point)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield str(mount_point)
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def numbered_batches(count, lines_per_batch, width=100):
    return [Batch("web", [b"%06d-%06d " % (n, i) + b"x" * width
                          for i in range(lines_per_batch)], timestamp=n)
            for n in range(count)]


def test_a_full_disk_drops_whole_batches_counts_them_and_never_tears_one(tmpfs, caplog):
    spool, buffer, stats = make(tmpfs, capacity=10 ** 6, max_bytes=1 << 30)
    kept = []
    for batch in numbered_batches(200, 97):           # ~2 MB into 1 MiB: about half fits
        before = stats.dropped
        spool.append(batch)                           # never raises
        if stats.dropped == before:
            kept.append(batch.lines)
    total = 200 * 97
    assert stats.spooled + stats.dropped == total
    assert 0 < stats.dropped < total
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "input web" in errors[0].getMessage()
    assert spool.directory in errors[0].getMessage()
    assert "No space left on device" in errors[0].getMessage()
    replayed = replay_all(spool, buffer)
    assert [b.lines for b in replayed] == kept         # every spooled line, none torn
    assert sum(len(lines) for lines in kept) == stats.spooled


def test_a_read_only_spool_directory_drops_and_counts_then_recovers(tmpfs, caplog):
    spool, buffer, stats = make(tmpfs)
    spool.append(Batch("web", [b"before"]))
    spool._close_write_segment()                       # as at a segment's end
    subprocess.run(["mount", "-o", "remount,ro", tmpfs], check=True)
    try:
        spool.append(Batch("web", [b"lost 1", b"lost 2"]))
    finally:
        subprocess.run(["mount", "-o", "remount,rw", tmpfs], check=True)
    assert stats.dropped == 2
    message = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR][0]
    assert "Read-only file system" in message and spool.directory in message
    spool.append(Batch("web", [b"after"]))
    assert [b.lines for b in replay_all(spool, buffer)] == [[b"before"], [b"after"]]


def test_a_failed_truncation_after_a_short_write_is_skipped_with_a_count(tmpfs, caplog,
                                                                        monkeypatch):
    spool, buffer, stats = make(tmpfs, capacity=10 ** 6, max_bytes=1 << 30)

    def refuse(fd, size):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(os, "ftruncate", refuse)
    kept = []
    for batch in numbered_batches(200, 97):
        before = stats.dropped
        spool.append(batch)
        if stats.dropped == before:
            kept.append(batch.lines)
    monkeypatch.undo()
    dropped = stats.dropped
    assert dropped
    caplog.clear()
    assert [b.lines for b in replay_all(spool, buffer)] == kept
    assert stats.dropped == dropped                    # counted once, when the write failed
    skipped = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(skipped) == 1 and "skipped" in skipped[0]


# ---- a corrupt spool (issue 8 item 8) -------------------------------------------------

def write_segment(tmp_path, content, seq=spool_module.FIRST_SEQ):
    directory = tmp_path / "spool" / "web"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{seq}.seg").write_bytes(content)


class TookTooLong(Exception):
    pass


def replay_within(spool, buffer, seconds=3):
    """replay_all, but a spin on the hub becomes a failure instead of a hung test: the
    alarm kills the spinning replay greenlet, and the deadline ends the wait for it."""
    def expire(signum, frame):
        raise TookTooLong()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    deadline = time.monotonic() + seconds
    greenlet = gevent.spawn(spool.replay_forever)
    out = []
    try:
        while spool.holds_lines() or buffer.lines:
            assert time.monotonic() < deadline and not greenlet.dead, "replay spun or died"
            gevent.sleep(0)
            for batch in buffer.take(10000):
                out.append(batch.lines)
                batch.source.confirmed(batch)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        greenlet.kill()
    return out


def damage_reports(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.ERROR and "damaged" in r.getMessage()]


@pytest.mark.parametrize("bad_header", [b"x 7 \n", b"1 7 a\n", b"1 7 5\n", b"-1 7 \n",
                                        b"0 7 \n", b"1\n", b"1 +7 \n"])
def test_a_damaged_header_is_skipped_counted_and_replay_resyncs(tmp_path, caplog,
                                                                bad_header):
    write_segment(tmp_path, b"1 7 \nok1\n" + bad_header + b"bad\n" + b"1 7 \nok2\n"
                  + b"2 7 \nok3\nok4\n")
    spool, buffer, stats = make(tmp_path)
    assert replay_within(spool, buffer) == [[b"ok1"], [b"ok2"], [b"ok3", b"ok4"]]
    [report] = damage_reports(caplog)
    assert f"{len(bad_header) + 4} bytes" in report and "2 lines" in report
    assert stats.dropped == 2


def test_a_count_larger_than_the_lines_left_is_reported_not_silent(tmp_path, caplog):
    write_segment(tmp_path, b"1 7 \nok1\n5 7 \na\nb\n")
    spool, buffer, stats = make(tmp_path)
    assert replay_within(spool, buffer) == [[b"ok1"]]
    [report] = damage_reports(caplog)
    assert "9 bytes" in report and "3 lines" in report
    assert stats.dropped == 3


@pytest.mark.parametrize("digits", [18, 40])
def test_a_huge_count_does_not_spin(tmp_path, caplog, digits):
    write_segment(tmp_path, b"1 7 \nok1\n" + b"9" * digits + b" 7 \na\n")
    write_segment(tmp_path, b"1 7 \nnext segment\n", seq=spool_module.FIRST_SEQ + 1)
    spool, buffer, _ = make(tmp_path)
    assert replay_within(spool, buffer) == [[b"ok1"], [b"next segment"]]
    assert len(damage_reports(caplog)) == 1


def test_a_segment_of_garbage_is_skipped_and_the_next_one_replayed(tmp_path, caplog):
    write_segment(tmp_path, os.urandom(5000).replace(b"\n", b"") + b"\n1 2 3\nno end")
    write_segment(tmp_path, b"1 7 \nnext segment\n", seq=spool_module.FIRST_SEQ + 1)
    spool, buffer, _ = make(tmp_path)
    assert replay_within(spool, buffer) == [[b"next segment"]]
    assert len(damage_reports(caplog)) == 1


def test_a_position_past_the_end_of_its_segment_replays_from_the_start(tmp_path):
    write_segment(tmp_path, b"1 7 \nok1\n")
    (tmp_path / "spool" / "web" / "position.json").write_text(
        '{"segment": %d, "offset": 999}' % spool_module.FIRST_SEQ)
    spool, buffer, _ = make(tmp_path)
    assert replay_within(spool, buffer) == [[b"ok1"]]


# ---- prepend, killed at any point (issue 8 item 12) ----------------------------------

class Killed(BaseException):
    """A SIGKILL, as far as the spool can tell: nothing after it runs."""


CRASH_POINTS = ("write", "fsync", "rename", "replace", "unlink", "ftruncate")


def spooled_then_prepended(tmp_path, monkeypatch, confirm_first, kill_at):
    """Ten one-line batches spooled over several segments, four replayed (the first one
    confirmed or not), then a graceful stop prepends [d0] + the unconfirmed ones, killed
    at the kill_at-th file-system call. Returns (replay before, replay after, killed)."""
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 30)
    spool, buffer, _ = make(tmp_path, capacity=4)
    for i in range(10):
        spool.append(Batch("web", [b"s%d" % i]))
    greenlet = gevent.spawn(spool.replay_forever)
    gevent.sleep(0)
    greenlet.kill()
    in_flight = buffer.take(100)
    assert [b.lines[0] for b in in_flight] == [b"s0", b"s1", b"s2", b"s3"]
    if confirm_first:
        in_flight[0].source.confirmed(in_flight[0])
        spool.save_position()
        in_flight = in_flight[1:]
    first = 1 if confirm_first else 0
    before = [[b"s%d" % i] for i in range(first, 10)]
    after = [[b"d0"]] + before
    calls = [0]

    def dying(name, real):
        def call(*args, **kwargs):
            calls[0] += 1
            if calls[0] == kill_at:
                raise Killed(name)
            return real(*args, **kwargs)
        return call
    for name in CRASH_POINTS:
        monkeypatch.setattr(os, name, dying(name, getattr(os, name)))
    killed = False
    try:
        spool.prepend([Batch("web", [b"d0"])] + in_flight)
    except Killed:
        killed = True
    monkeypatch.undo()
    return before, after, killed


@pytest.mark.parametrize("confirm_first", [True, False])
def test_prepend_killed_at_any_point_replays_the_old_spool_or_the_new_one(
        tmp_path, monkeypatch, confirm_first):
    outcomes = []
    for kill_at in range(1, 200):
        directory = tmp_path / str(kill_at)
        directory.mkdir()
        before, after, killed = spooled_then_prepended(directory, monkeypatch,
                                                       confirm_first, kill_at)
        again, buffer, _ = make(directory)
        replayed = [b.lines for b in replay_all(again, buffer)]
        assert replayed in (before, after), f"killed at call {kill_at}: {replayed}"
        again.save_position()
        left = os.listdir(again.directory) if os.path.isdir(again.directory) else []
        assert left == [], f"killed at call {kill_at}: left {left}"
        outcomes.append(replayed == after)
        if not killed:
            break
    assert not outcomes[0] and outcomes[-1]            # both ends were reached


def test_prepend_on_a_full_disk_raises_and_leaves_the_spool_intact(tmpfs):
    spool, buffer, _ = make(tmpfs, capacity=1)
    for i in range(3):
        spool.append(Batch("web", [b"s%d" % i]))
    greenlet = gevent.spawn(spool.replay_forever)
    gevent.sleep(0)
    greenlet.kill()
    in_flight = buffer.take(10)
    filler = os.open(os.path.join(tmpfs, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:                                               # the rest of the disk
        while os.write(filler, b"f" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(filler)
    names = sorted(os.listdir(spool.directory))
    with pytest.raises(OSError):
        spool.prepend([Batch("web", [b"d%d" % i + b"x" * 1000]) for i in range(2000)]
                      + in_flight)
    assert sorted(os.listdir(spool.directory)) == names
    os.unlink(os.path.join(tmpfs, "filler"))
    again, buffer2, _ = make(tmpfs)
    assert [b.lines for b in replay_all(again, buffer2)] == [[b"s0"], [b"s1"], [b"s2"]]


# ---- private files (issue 9) ----------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_spool_directories_are_0700_and_files_0600_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        spool, buffer, _ = make(tmp_path, capacity=1)
        spool.append(Batch("web", [b"a"]))
        spool.append(Batch("web", [b"b"]))
        greenlet = gevent.spawn(spool.replay_forever)
        gevent.sleep(0)
        greenlet.kill()
        taken = buffer.take(10)
        taken[0].source.confirmed(taken[0])
        spool.save_position()
        spool.prepend([Batch("web", [b"direct"])] + taken)
        spool.append(Batch("web", [b"c"]))
        spool.close()
    finally:
        os.umask(old)
    root = tmp_path / "spool"
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode)
             for p in [root, *root.rglob("*")]}
    assert {p: m for p, m in modes.items() if (tmp_path / p).is_dir()} == {
        "spool": 0o700, "spool/web": 0o700}
    files = {p: m for p, m in modes.items() if (tmp_path / p).is_file()}
    assert "spool/web/position.json" in files and len(files) >= 3
    assert set(files.values()) == {0o600}, files


# ---- waiting behind the replay (issue 8 item 7) --------------------------------------

def test_wait_replayed_returns_when_the_spool_is_replayed(tmp_path):
    spool, buffer, _ = make(tmp_path, capacity=2)
    assert spool.wait_replayed(timeout=0) is True      # nothing spooled
    for i in range(5):
        spool.append(Batch("web", [b"s%d" % i]))
    assert spool.wait_replayed(timeout=0.05) is False
    taken = []
    waited = gevent.spawn(lambda: (spool.wait_replayed(), list(taken)))
    replay = gevent.spawn(spool.replay_forever)
    while len(taken) < 5:
        gevent.sleep(0.01)
        taken += buffer.take(1)
    # the waiter woke when the last batch went into the buffer, not before
    held, seen = waited.get(timeout=1)
    assert held is True and len(seen) >= 3 and not spool.holds_lines()
    replay.kill()
    spool.append(Batch("web", [b"late"]))              # holds lines again: waits again
    assert spool.wait_replayed(timeout=0.05) is False
    replay = gevent.spawn(spool.replay_forever)
    assert spool.wait_replayed(timeout=2) is True
    assert [b.lines for b in buffer.take(10)] == [[b"late"]]
    replay.kill()


def test_crafted_headers_cannot_make_the_resync_quadratic(tmp_path, caplog):
    # every line a header announcing nearly all the lines after it, none complete
    lines = 20000
    content = b"".join(b"%d 7 \n" % (lines - i + 5) for i in range(lines))
    write_segment(tmp_path, b"1 7 \nok1\n" + content)
    spool, buffer, stats = make(tmp_path)
    assert replay_within(spool, buffer, seconds=5) == [[b"ok1"]]
    assert stats.dropped == lines and len(damage_reports(caplog)) == 1


def test_a_spool_left_by_an_earlier_version_is_made_private_at_start(tmp_path):
    write_segment(tmp_path, b"1 7 \nold\n")
    directory = tmp_path / "spool" / "web"
    (directory / "position.json.new").write_text("{")
    for path in (tmp_path / "spool", directory):
        path.chmod(0o755)
    (directory / f"{spool_module.FIRST_SEQ}.seg").chmod(0o644)
    spool, buffer, _ = make(tmp_path)
    assert os.listdir(directory) == [f"{spool_module.FIRST_SEQ}.seg"]
    assert stat.S_IMODE((directory / f"{spool_module.FIRST_SEQ}.seg").stat().st_mode) == 0o600
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "spool", directory)} == {0o700}
    assert replay_within(spool, buffer) == [[b"old"]]


def test_prepend_counts_as_spooled_what_no_spool_held_before(tmp_path):
    """`spooled` counts lines newly spooled at a stop: a pipe's (no mark) and a file's no
    file gives again (a file mark); not replayed spool records put back."""
    from tailrabbit.marks import FilePosition

    class Record:
        generation, path = 0, "/var/log/api.log"
    spool, buffer, stats = make(tmp_path)
    spool.append(Batch("web", [b"s1"]))
    greenlet = gevent.spawn(spool.replay_forever)
    gevent.sleep(0)
    replayed = buffer.take(1)                        # a spool record, back at the stop
    greenlet.kill()
    before = stats.spooled
    from_file = Batch("web", [b"f1", b"f2"], [0, 3], None, FilePosition(Record()), 6)
    spool.prepend([Batch("web", [b"d0"]), from_file] + replayed)
    assert stats.spooled - before == 3
