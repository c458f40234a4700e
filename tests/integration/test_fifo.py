"""fifo end to end: created if missing, writers come and go, unterminated tails, order."""

import os
import stat

from helpers import wait_for


def fifo_config(config, queue, path, **extra):
    config["input:nginx"] = {"type": "fifo", "path": path, "queue": queue, **extra}
    return config


def open_writer(path, timeout=20):
    """Open the FIFO for writing once tailrabbit reads it (non-blocking open fails before)."""
    def attempt():
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return None
    fd = wait_for(attempt, timeout, message=f"a reader on {path}")
    os.set_blocking(fd, True)
    return fd


def test_fifo_created_and_writers_reopen_with_unterminated_tails(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    path = str(tmp_path / "access.fifo")
    proc = tailrabbit_factory(fifo_config(config, queue_name, path))
    wait_for(lambda: os.path.exists(path), message="the FIFO to be created")
    assert stat.S_ISFIFO(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    expected = []
    for writer in range(3):
        fd = open_writer(path)
        lines = [b"writer %d line %d" % (writer, i) for i in range(1000)]
        os.write(fd, b"\n".join(lines) + b"\n" + b"tail of writer %d" % writer)
        os.close(fd)
        expected += lines + [b"tail of writer %d" % writer]
        broker.wait_depth(queue_name, len(expected))
    assert proc.stop() == 0, proc.log()
    messages = broker.consume_all(queue_name)
    assert [m.body for m in messages] == expected
    assert messages[0].properties["application_headers"]["path"] == path
    assert "offset" not in messages[0].properties["application_headers"]


def test_fifo_stream_in_many_small_writes_keeps_order(broker, config, queue_name,
                                                      tailrabbit_factory, tmp_path):
    path = str(tmp_path / "stream.fifo")
    proc = tailrabbit_factory(fifo_config(config, queue_name, path))
    fd = open_writer(path)
    expected = [b"%d %s" % (i, b"x" * (i % 300)) for i in range(20000)]
    data = b"".join(line + b"\n" for line in expected)
    for start in range(0, len(data), 777):           # writes that split lines anywhere
        os.write(fd, data[start:start + 777])
    os.close(fd)
    broker.wait_depth(queue_name, len(expected))
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == expected


def test_a_fifo_others_can_write_or_own_is_not_read_until_fixed(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """Whoever can write into the FIFO can put lines into our queue: a FIFO writable by
    others or owned by another user is refused (one ERROR, retried). (A path that is not
    a FIFO is refused at load, exit 78; the same check at open covers a later swap.)"""
    if os.geteuid() != 0:
        import pytest
        pytest.skip("needs root to give the FIFO to another user")
    open_path, owned_path = str(tmp_path / "open.fifo"), str(tmp_path / "owned.fifo")
    os.mkfifo(open_path)
    os.chmod(open_path, 0o622)
    os.mkfifo(owned_path, 0o600)
    os.chown(owned_path, 65534, 65534)                 # nobody
    config["input:open"] = {"type": "fifo", "path": open_path, "queue": queue_name}
    config["input:owned"] = {"type": "fifo", "path": owned_path, "queue": queue_name}
    proc = tailrabbit_factory(config)
    proc.wait_for_event("fifo_cannot_open",
                        containing=f"FIFO {open_path} is writable by others (mode 0622)")
    proc.wait_for_event("fifo_cannot_open",
                        containing=f"FIFO {owned_path} is owned by uid 65534")
    for path in (open_path, owned_path):           # nobody reads them: no writer can open
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            raise AssertionError(f"{path} has a reader")
        except OSError:
            pass
    os.chmod(open_path, 0o620)                     # fixed: read at the next retry
    fd = open_writer(open_path, timeout=20)
    os.write(fd, b"after the fix\n")
    os.close(fd)
    broker.wait_depth(queue_name, 1)
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == [b"after the fix"]
    # rate-limited, not every 5 s
    assert len(proc.logged("fifo_cannot_open", "input open: ")) == 1


def test_writers_that_reopen_back_to_back_never_find_the_pipe_without_a_reader(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """nginx -s reopen: the old writer closes and the new one opens at once. tailrabbit
    opens its next reader before closing the old one, so a writer that opened in between
    never writes into a pipe with no reader (EPIPE: the line would be lost)."""
    path = str(tmp_path / "reopen.fifo")
    proc = tailrabbit_factory(fifo_config(config, queue_name, path))
    expected = []
    fd = open_writer(path)
    for cycle in range(300):
        line = b"cycle %04d" % cycle
        os.write(fd, line + b"\n")                 # EPIPE here fails the test
        expected.append(line)
        os.close(fd)
        fd = os.open(path, os.O_WRONLY)            # blocking, like nginx: needs a reader
    os.close(fd)
    broker.wait_depth(queue_name, len(expected))
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == expected
