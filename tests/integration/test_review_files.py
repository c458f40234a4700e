"""Hostile review of the file input: scenarios where a line could be lost, torn (a message
that is a piece of a line), merged or shipped twice with no fault to explain it.

Each test builds one exact scenario against the real broker and compares the bodies that
arrived with the lines of the files, byte for byte. Where a race with the 1 s poll has to
be won by the writer (a truncation and regrowth between two polls, bytes appended before a
copytruncate), the tailrabbit process is held with SIGSTOP while the files change and let
go with SIGCONT: what a slow scheduler or a busy hub does anyway, made deterministic.
"""

import gzip
import os
import shutil
import socket

import pytest

from file_helpers import Held, append, checkpoints, file_input, wait_read, wait_saved
from helpers import base_config


@pytest.fixture
def dead_broker(state_dir):
    """A config whose broker never answers: a port bound but not listening (connects are
    refused) for the whole test. Same state_dir as the `config` fixture."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = base_config(state_dir, broker="127.0.0.1:%d" % sock.getsockname()[1])
    config["tailrabbit"]["shutdown_timeout"] = 1
    yield config
    sock.close()


# ---- rotated names -----------------------------------------------------------------------


# ---- graceful stops with the broker down ------------------------------------------------

def test_copytruncate_with_the_broker_down_then_a_graceful_restart_loses_nothing(
        broker, config, dead_broker, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """"Nothing a graceful stop holds is lost, even with the broker down" (CONTRACT): lines
    read from a file, not confirmed, then copytruncated, then a SIGTERM. The copy still
    holds them; the next start must ship them."""
    path = str(tmp_path / "api.log")
    lines = [b"line %d" % i for i in range(5)]
    append(path, b"".join(line + b"\n" for line in lines))
    first = tailrabbit_factory(file_input(dead_broker, queue_name, path), name="first")
    wait_read(first, 5)                               # read, buffered, never confirmed
    with Held(first):
        append(path, b"line 5\nline 6\n")            # unread: they are read from the copy
        shutil.copyfile(path, path + ".1")            # logrotate copytruncate
        os.truncate(path, 0)
        append(path, b"after 1\n")
    lines += [b"line 5", b"line 6"]
    first.wait_for_event("file_copytruncated")
    wait_read(first, 8)
    assert first.stop() == 0, first.log()
    second = tailrabbit_factory(file_input(config, queue_name, path), name="second")
    append(path, b"after 2\n")
    wait_saved(state_dir, path, os.path.getsize(path))
    assert second.stop() == 0, second.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == lines + [b"after 1", b"after 2"]


def test_a_rotated_file_compressed_with_the_broker_down_then_a_graceful_restart(
        broker, config, dead_broker, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """logrotate `create` + `compress` (no delaycompress): the rotated file is gzipped and
    deleted at once. Its lines were read but not confirmed (broker down); a graceful stop
    must not drop them (a FIFO's go to the spool; a deleted file cannot be read again)."""
    path = str(tmp_path / "api.log")
    lines = [b"line %d" % i for i in range(5)]
    append(path, b"".join(line + b"\n" for line in lines))
    first = tailrabbit_factory(file_input(dead_broker, queue_name, path), name="first")
    wait_read(first, 5)
    os.rename(path, path + ".1")                      # create
    append(path, b"")
    with open(path + ".1", "rb") as source, gzip.open(path + ".1.gz", "wb") as target:
        shutil.copyfileobj(source, target)            # compress
    os.unlink(path + ".1")
    append(path, b"after 1\n")
    first.wait_for_event("file_rotated")
    wait_read(first, 6)
    assert first.stop() == 0, first.log()
    second = tailrabbit_factory(file_input(config, queue_name, path), name="second")
    wait_saved(state_dir, path, os.path.getsize(path))
    assert second.stop() == 0, second.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == lines + [b"after 1"]


# ---- symlinked exact path ---------------------------------------------------------------

def test_a_link_switched_while_stopped_still_reads_the_old_targets_rest(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """`path` names a link (allowed for an exact path) that the app switches to a new file
    at rotation (`current.log -> app-2.log`). While tailrabbit runs, the old file is read
    to its end through its descriptor; a switch while it is stopped must not lose the
    old target's unread lines either."""
    link = str(tmp_path / "current.log")
    one, two = str(tmp_path / "app-1.log"), str(tmp_path / "app-2.log")
    append(one, b"one 1\n")
    os.symlink(one, link)
    config = file_input(config, queue_name, link)
    first = tailrabbit_factory(config, name="first")
    wait_saved(state_dir, one, 6)
    assert first.stop() == 0, first.log()
    append(one, b"one 2\n")                           # unread when the link switches
    append(two, b"two 1\n")
    os.symlink(two, link + ".new")
    os.rename(link + ".new", link)
    second = tailrabbit_factory(config, name="second")
    wait_saved(state_dir, two, 6)
    assert second.stop() == 0, second.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == [b"one 1", b"one 2", b"two 1"]
    entry = [e for e in checkpoints(state_dir) if e["ino"] == os.stat(one).st_ino][0]
    assert (entry["path"], entry["resolved"]) == (link, one)


def test_a_link_switched_then_a_stop_with_the_broker_down_ships_the_old_target_once(
        broker, config, dead_broker, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """The link switches while tailrabbit runs with the broker down: the old target is read
    to its end, nothing confirmed, then a graceful stop. The next start reads the old
    target again from its checkpoint (found at its resolved path), so its lines must not
    also be spooled: each line once, the old target's first."""
    link = str(tmp_path / "current.log")
    one, two = str(tmp_path / "app-1.log"), str(tmp_path / "app-2.log")
    append(one, b"one 1\n")
    os.symlink(one, link)
    first = tailrabbit_factory(file_input(dead_broker, queue_name, link), name="first")
    wait_read(first, 1)
    append(one, b"one 2\n")
    append(two, b"two 1\n")
    os.symlink(two, link + ".new")
    os.rename(link + ".new", link)
    first.wait_for_event("file_rotated")
    wait_read(first, 3)
    assert first.stop() == 0, first.log()
    second = tailrabbit_factory(file_input(config, queue_name, link), name="second")
    second.wait_for_event("file_rotated_while_stopped")
    wait_saved(state_dir, one, 12)
    wait_saved(state_dir, two, 6)
    assert second.stop() == 0, second.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == [b"one 1", b"one 2", b"two 1"]


# ---- checked and found sound: kept as regression tests ----------------------------------

READ_CHUNK = 1 << 18          # tailrabbit/files/tailer.py: one pread


def test_odd_bytes_across_read_chunk_boundaries_arrive_exactly_with_their_offsets(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """\\r\\n split between two reads, a UTF-8 character split between two reads, an empty
    line as the first byte of a read, NUL and invalid UTF-8: every body is the line's
    bytes exactly, every `offset` header the line's first byte."""
    content = bytearray()
    lines, offsets = [], []

    def put(line, newline=True):
        if line:
            lines.append(line)
            offsets.append(len(content))
        content.extend(line + (b"\n" if newline else b""))

    def fill_to(position):          # a filler line ending just before `position`
        head = b"f%d " % len(lines)
        put(head + b"." * (position - len(content) - len(head) - 1))
        assert len(content) == position

    fill_to(READ_CHUNK - 5)
    put(b"crlf\r")                                   # "\r" last of a read, "\n" first of next
    assert content[READ_CHUNK - 1:READ_CHUNK + 1] == b"\r\n"
    fill_to(2 * READ_CHUNK - 4)
    put(b"caf\xc3\xa9 \xff\xfe")                     # \xc3 | \xa9 across the boundary
    assert content[2 * READ_CHUNK - 1:2 * READ_CHUNK + 1] == b"\xc3\xa9"
    fill_to(3 * READ_CHUNK)
    put(b"")                                         # an empty line: first byte of a read
    put(b"nul \x00 after an empty line")
    put(b"\x00")
    put(b"end")
    path = str(tmp_path / "api.log")
    with open(path, "wb") as handle:
        handle.write(content)
    proc = tailrabbit_factory(file_input(config, queue_name, path))
    broker.wait_depth(queue_name, len(lines))
    assert proc.stop() == 0, proc.log()
    messages = broker.consume_all(queue_name)
    assert [m.body for m in messages] == lines
    assert [m.properties["application_headers"]["offset"] for m in messages] == offsets


def test_a_file_recreated_on_the_same_inode_while_stopped_is_read_from_its_start(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """The checkpoint names (dev, ino) and a fingerprint: a new file that reuses the inode
    (ext4 hands a freed inode to the next file created) and is longer than the old
    offset is a new file, read from 0, not resumed at the old file's offset."""
    path = str(tmp_path / "api.log")
    old = [b"first run %02d" % i for i in range(30)]
    append(path, b"".join(line + b"\n" for line in old))
    config = file_input(config, queue_name, path)
    first = tailrabbit_factory(config, name="first")
    wait_saved(state_dir, path, os.path.getsize(path))
    assert first.stop() == 0, first.log()
    inode = os.stat(path).st_ino
    os.unlink(path)
    new = [b"second run, a longer line %02d" % i for i in range(30)]
    tries = [str(tmp_path / f"try-{i}") for i in range(200)]
    for name in tries:                # the next files created get the freed inode, mostly
        append(name, b"")
        if os.stat(name).st_ino == inode:
            append(name, b"".join(line + b"\n" for line in new))
            os.rename(name, path)
            break
    for name in tries:
        if os.path.exists(name):
            os.unlink(name)
    if not os.path.exists(path):
        pytest.skip("this filesystem did not reuse the inode")
    assert os.stat(path).st_ino == inode
    second = tailrabbit_factory(config, name="second")
    wait_saved(state_dir, path, os.path.getsize(path))
    assert second.stop() == 0, second.log()
    assert [m.body for m in broker.consume_all(queue_name)] == old + new


def test_sigkill_right_after_a_dateext_rotation_reads_the_old_file_first(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """A SIGKILL right after logrotate (`create`, `dateext`) renamed the file, before the
    rotated file's last lines or the new file were read: the restart finds the old file
    by identity under its dated name and reads it from the checkpoint, then the new one;
    nothing lost, nothing twice (the checkpoint was saved before the kill)."""
    path = str(tmp_path / "api.log")
    before = [b"before %02d" % i for i in range(20)]
    unread = [b"unread %02d" % i for i in range(10)]
    after = [b"after %02d" % i for i in range(5)]
    append(path, b"".join(line + b"\n" for line in before))
    config = file_input(config, queue_name, path)
    first = tailrabbit_factory(config, name="first")
    wait_saved(state_dir, path, os.path.getsize(path))
    with Held(first):
        append(path, b"".join(line + b"\n" for line in unread))
        os.rename(path, path + "-20261127")
        append(path, b"".join(line + b"\n" for line in after))
        first.kill()
    second = tailrabbit_factory(config, name="second")
    second.wait_for_event("file_rotated_while_stopped")
    wait_saved(state_dir, path, os.path.getsize(path))
    assert second.stop() == 0, second.log()
    assert [m.body for m in broker.consume_all(queue_name)] == before + unread + after
