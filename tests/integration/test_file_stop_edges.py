"""Two edges of a graceful stop of a file input, against the real broker.

1. A stop while a copytruncate copy is being read: the original (an exact path, api.log)
   was truncated and its unread tail is being read from the copy (api.log.1, which the
   pattern does not match) when SIGTERM comes. The next start must read the copy's rest,
   and a stop in the middle of that must not lose it either; with the broker back for
   the stop (every line read is confirmed) and with it away (the lines are read again
   from the copy, not spooled). Every line once, in order.
2. A file input removed by SIGHUP while the broker is away, then a stop: its lines that
   no file gives again (a rotated file deleted since, a file truncated since) go to its
   spool, reported at the next start; the input added back publishes them first, then
   reads on from its checkpoint.

The reader is stopped in the middle of the copy deterministically: the broker is kept away
(the fault proxy refuses connections) and the buffer holds 5 lines, so the reader blocks
putting the copy's first or second read (256 KiB each) while the copy holds 2 MB; the
stats tell when it is blocked (it read more than is confirmed and buffered).
"""

import gzip
import os
import shutil
import signal

import pytest

from file_helpers import Held, append, file_input, stats_of, wait_read, wait_saved
from helpers import wait_for, write_config


@pytest.fixture
def proxied_config(proxied_config):
    """The fault proxy's config, with a buffer of 5 lines (a reader blocks in a copy)
    and the default drain (a stop with the broker back must deliver)."""
    proxied_config["tailrabbit"]["buffer"] = 5
    del proxied_config["tailrabbit"]["shutdown_timeout"]
    return proxied_config


def lines_of(lines):
    return b"".join(line + b"\n" for line in lines)


def wait_blocked(proc):
    """Until the reader holds a batch it cannot put: the buffer is full (the broker is
    away) and more lines were read than are confirmed or buffered."""
    proc.wait_for_event("started")

    def blocked():
        stats = stats_of(proc)
        return stats["buffered"] >= 5 and stats["read"] > stats["confirmed"] + stats["buffered"]
    wait_for(blocked, 30, message="the reader blocked on a full buffer")


def stop(proc, proxy, broker_at_stop):
    """SIGTERM. `up`: the broker comes back once the reader has stopped, so every line
    read is confirmed by the drain; `down`: it stays away (shutdown_timeout 1 s)."""
    proc.signal(signal.SIGTERM)
    if broker_at_stop == "up":
        proc.wait_for_event("stopping")       # logged just before the readers are stopped
        proxy.set_mode("pass")
    assert proc.wait(90) == 0, proc.log()
    if broker_at_stop == "up":
        assert not proc.logged("stopped_unconfirmed"), proc.log()
    proxy.set_mode("refuse")


# ---- 1. a stop while a copytruncate copy is read -----------------------------------------

@pytest.mark.parametrize("broker_at_stop", ["up", "down"])
def test_stops_while_a_copytruncate_copy_is_read_lose_and_repeat_nothing(
        broker_at_stop, broker, proxied_config, proxy, queue_name, tailrabbit_factory,
        tmp_path, state_dir):
    proxied_config["tailrabbit"]["shutdown_timeout"] = 60 if broker_at_stop == "up" else 1
    path = str(tmp_path / "api.log")
    config = file_input(proxied_config, queue_name, path)
    head = [b"line %d" % i for i in range(10)]
    more = [b"line %d" % i for i in range(10, 15)]
    big = [b"copy %05d %s" % (i, b"x" * 90) for i in range(20000)]     # 2 MB: 8 reads
    append(path, lines_of(head))
    first = tailrabbit_factory(config, name="first")
    wait_saved(state_dir, path, os.path.getsize(path))               # confirmed
    proxy.set_mode("refuse")
    proxy.cut()
    first.wait_for_event("connection_lost")
    append(path, lines_of(more))
    wait_read(first, 15)                  # read, not confirmed: the buffer is full
    with Held(first):                     # logrotate copytruncate between two polls
        append(path, lines_of(big))       # unread: read from the copy
        shutil.copyfile(path, path + ".1")
        os.truncate(path, 0)
        append(path, b"after 1\n")
    first.wait_for_event("file_copytruncated")
    wait_blocked(first)                   # in the middle of the copy
    stop(first, proxy, broker_at_stop)
    if broker_at_stop == "down":
        assert not first.logged("unconfirmed_spooled"), first.log()   # the copy has them

    second = tailrabbit_factory(config, name="second")   # reads the copy's rest first...
    wait_blocked(second)                  # ...and is stopped in the middle of it again
    stop(second, proxy, broker_at_stop)

    proxy.set_mode("pass")
    third = tailrabbit_factory(config, name="third")
    append(path, b"after 2\n")
    wait_saved(state_dir, path, os.path.getsize(path), timeout=60)   # the copy goes first
    assert third.stop() == 0, third.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    expected = head + more + big + [b"after 1", b"after 2"]
    missing = len(set(expected) - set(bodies))
    assert bodies == expected, (f"{len(bodies)} messages for {len(expected)} lines: "
                                f"{missing} lost, {len(bodies) - len(set(bodies))} repeated")


# ---- 2. a file input removed by SIGHUP with the broker down, then a stop ------------------

@pytest.mark.parametrize("fate", ["deleted", "truncated"])
def test_a_removed_file_inputs_lines_no_file_gives_again_are_spooled_at_the_stop(
        fate, broker, config, proxied_config, proxy, queue_name, tailrabbit_factory,
        tmp_path, state_dir):
    """The input is removed while the broker is away, after its file was rotated and
    compressed (deleted) or truncated in place, with its lines read but not confirmed.
    Nobody reads them again: spooled under the input's name (spool_orphaned at a start
    without it); the input added back publishes them first, then its file's new lines."""
    proxied_config["tailrabbit"]["shutdown_timeout"] = 1
    path = str(tmp_path / "api.log")
    other = str(tmp_path / "other.log")
    append(other, b"")
    with_api = file_input(dict(proxied_config), queue_name, path)
    with_api["input:other"] = {"type": "file", "path": other, "queue": queue_name + "-o"}
    without_api = {key: value for key, value in with_api.items() if key != "input:api"}
    proxy.set_mode("refuse")
    lines = [b"line %d" % i for i in range(5)]
    append(path, lines_of(lines))
    first = tailrabbit_factory(with_api, name="first")
    wait_read(first, 5)
    if fate == "deleted":                 # logrotate create + compress, no delaycompress
        os.rename(path, path + ".1")
        append(path, b"")
        with open(path + ".1", "rb") as source, gzip.open(path + ".1.gz", "wb") as target:
            shutil.copyfileobj(source, target)
        os.unlink(path + ".1")
        append(path, b"after 1\n")
        first.wait_for_event("file_rotated")
    else:
        with Held(first):                 # truncated in place and written again
            os.truncate(path, 0)
            append(path, b"after 1\n")
        first.wait_for_event("file_truncated")
    wait_read(first, 6)
    config_path = tmp_path / "first.ini"
    write_config(config_path, without_api)
    first.signal(signal.SIGHUP)
    assert "removed api" in first.wait_for_event("reloaded"), first.log()
    assert first.stop() == 0, first.log()
    spooled = first.logged("unconfirmed_spooled", "input api")
    assert spooled and "5 lines" in spooled[0], first.log()

    proxy.set_mode("pass")
    without = tailrabbit_factory(without_api, name="without")
    orphaned = without.wait_for_event("spool_orphaned")
    assert "input api" in orphaned, without.log()
    assert without.stop() == 0, without.log()

    back = tailrabbit_factory(file_input(dict(config), queue_name, path), name="back")
    append(path, b"after 2\n")
    wait_saved(state_dir, path, os.path.getsize(path))
    assert back.stop() == 0, back.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == lines + [b"after 1", b"after 2"]
