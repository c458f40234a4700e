"""Hostile review of the pipe inputs (fifo, stdin), the spool and the stop/reload paths:
scenarios where a line could be lost, torn, merged or repeated without a fault to explain
it. Each test states what the contract promises and compares the queue byte for byte."""

import fcntl
import os
import re
import signal
import subprocess
import termios

import pytest

from helpers import check_at_least_once, wait_for, write_config
from integration.test_fifo import open_writer


def pipe_bytes(fd):
    """Bytes waiting in the pipe `fd` belongs to (FIONREAD works on either end)."""
    import array
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf, True)
    return buf[0]


def reader_present(path):
    """True when the FIFO has a reader (a non-blocking open for writing succeeds)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        return True
    except OSError:
        return False


def fd_flags(pid, fd):
    """The open flags (octal text of /proc/PID/fdinfo) of a descriptor of a process."""
    with open(f"/proc/{pid}/fdinfo/{fd}") as handle:
        for line in handle:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    return None


def stats_count(proc, name, key):
    return proc.stats(name)[key]


# ---- stdin: a reload that restarts the input -------------------------------------------

def test_a_reload_that_restarts_a_stdin_input_keeps_stdin_non_blocking(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """SIGHUP changing max_line_bytes of a stdin input (a reading key: the input is
    replaced). The new reader starts first and saves stdin's flags (already O_NONBLOCK,
    set by the old reader); the old reader, killed, restores the flags IT saved (blocking)
    on the shared descriptor. The new reader then does a blocking os.read() on stdin in the
    gevent hub's thread: the whole daemon freezes (no publishing, no heartbeats, no
    signals) until stdin delivers bytes again."""
    config["input:in"] = {"type": "stdin", "queue": queue_name}
    proc = tailrabbit_factory(config, stdin=subprocess.PIPE)
    stream = proc.process.stdin
    stream.write(b"before reload\n")
    stream.flush()
    broker.wait_depth(queue_name, 1)

    config["input:in"]["max_line_bytes"] = 4096
    write_config(tmp_path / "tailrabbit.ini", config)
    proc.signal(signal.SIGHUP)
    proc.wait_for_event("reloaded")

    flags = fd_flags(proc.pid, 0)
    stream.write(b"after reload 1\n")
    stream.flush()
    try:
        try:
            broker.wait_depth(queue_name, 2, timeout=15)
        except AssertionError:
            proc.signal(signal.SIGTERM)
            try:
                proc.process.wait(5)
                term = "SIGTERM then stopped it"
            except subprocess.TimeoutExpired:
                term = "SIGTERM did not stop it within 5 s"
            raise AssertionError(
                f"the line written after the reload was not published in 15 s; the "
                f"daemon's stdin flags are {flags:o} (O_NONBLOCK "
                f"{'set' if flags & os.O_NONBLOCK else 'CLEARED'}): a blocking read "
                f"holds the gevent hub; {term}") from None
        stats_count(proc, "in", "read")          # the control loop answers SIGUSR1
    finally:
        stream.close()           # EOF ends a frozen read: the process can finish
    assert proc.wait(30) == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == [
        b"before reload", b"after reload 1"]


# ---- stdin that is a regular file: SIGTERM mid-read -------------------------------------

BLOCK_FILLER = b".\n" * 123                  # 246 bytes of filtered lines
BLOCK = 256                                  # + "K%08d\n": chunk edges fall between blocks


def test_sigterm_while_stdin_is_a_file_being_read_loses_no_line_it_read(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """`tailrabbit -c conf < big.log`, SIGTERM while it reads. stdin's reader reads a
    256 KiB chunk, then yields (gevent.sleep(0) in inputs/base.blocking_read); a stop
    kills it right there: the chunk it just consumed from the descriptor is never framed,
    published or spooled. Expected: every line that lies wholly before stdin's final
    offset (the shared file position says how far tailrabbit read) is delivered.

    Most lines are filtered (include = K) so the buffer never fills and the reader is never
    blocked in a put (where a stop spools its batch correctly); chunk edges fall on line
    edges so no partial line muddies the comparison."""
    blocks = 200_000                          # 51 MB
    path = tmp_path / "bulk.log"
    with open(path, "wb") as handle:
        for start in range(0, blocks, 10_000):
            handle.write(b"".join(BLOCK_FILLER + b"K%08d\n" % i
                                 for i in range(start, min(blocks, start + 10_000))))
    size = os.path.getsize(path)
    assert size == blocks * BLOCK
    config["tailrabbit"]["buffer"] = 1_000_000       # never full: no put to block in
    config["input:in"] = {"type": "stdin", "queue": queue_name, "include": "K"}
    with open(path, "rb") as stdin:
        proc = tailrabbit_factory(config, stdin=stdin)
        position = lambda: os.lseek(stdin.fileno(), 0, os.SEEK_CUR)   # noqa: E731
        wait_for(lambda: position() >= 8 * (1 << 18), timeout=30,
                 message="tailrabbit reading stdin")
        proc.signal(signal.SIGTERM)
        assert proc.wait(60) == 0, proc.log()
        final = position()
    if final >= size:
        pytest.skip("stdin was read to its end before the SIGTERM landed")
    assert final % BLOCK == 0
    expected = [b"K%08d" % i for i in range(final // BLOCK)]
    spooled = proc.logged("unconfirmed_spooled")
    if spooled:        # a slow broker cut the drain short: the next run delivers them
        again = tailrabbit_factory(config, name="again")     # stdin: /dev/null
        assert again.wait(60) == 0, again.log()
        bodies = [m.body for m in broker.consume_all(queue_name)]
        count = int(re.search(r"(\d+) lines not confirmed", spooled[0]).group(1))
        # at-least-once: a spooled line the broker took after all arrives twice
        assert check_at_least_once(bodies, expected) <= count
        return
    bodies = [m.body for m in broker.consume_all(queue_name)]
    missing = len(expected) - len(bodies)
    assert bodies == expected, (
        f"read up to byte {final}; {len(bodies)} lines delivered, {len(expected)} expected "
        f"({missing} missing: {missing * BLOCK} bytes read and dropped); last delivered "
        f"{bodies[-1:]!r}")


def test_a_reload_that_restarts_a_stdin_input_reading_a_file_loses_no_line(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """The same yield point without any stop: `tailrabbit < big.log` and a SIGHUP that
    changes max_line_bytes while it reads. The new reader continues at stdin's shared
    offset; the old one, killed at its gevent.sleep(0), drops the chunk it had read. The
    process then reaches EOF and exits 0 ("done: every line confirmed") with a hole of
    about 1,000 lines in the middle of the queue."""
    blocks = 200_000
    path = tmp_path / "bulk.log"
    with open(path, "wb") as handle:
        for start in range(0, blocks, 10_000):
            handle.write(b"".join(BLOCK_FILLER + b"K%08d\n" % i
                                 for i in range(start, min(blocks, start + 10_000))))
    size = os.path.getsize(path)
    config["tailrabbit"]["buffer"] = 1_000_000       # never full: no put to block in
    config["input:in"] = {"type": "stdin", "queue": queue_name, "include": "K"}
    with open(path, "rb") as stdin:
        proc = tailrabbit_factory(config, stdin=stdin)
        position = lambda: os.lseek(stdin.fileno(), 0, os.SEEK_CUR)   # noqa: E731
        wait_for(lambda: position() >= 8 * (1 << 18), timeout=30,
                 message="tailrabbit reading stdin")
        config["input:in"]["max_line_bytes"] = 4096
        write_config(tmp_path / "tailrabbit.ini", config)
        proc.signal(signal.SIGHUP)
        at = position()
        assert proc.wait(120) == 0, proc.log()
    if at >= size or not proc.logged("reloaded"):
        pytest.skip("stdin was read to its end before the reload")
    expected = [b"K%08d" % i for i in range(blocks)]
    bodies = [m.body for m in broker.consume_all(queue_name)]
    got = set(bodies)
    missing = [line for line in expected if line not in got]
    assert not missing, (f"{len(missing)} lines never published, "
                         f"{missing[0]!r}..{missing[-1]!r}; exit 0 all the same")
    assert bodies == expected


# ---- fifo: a line being written when the input restarts or stops ------------------------

def _write_first_half(path):
    fd = open_writer(path)
    os.write(fd, b"complete 1\n")
    os.write(fd, b"first half|")                 # a writer mid-line (stdio buffering)
    wait_for(lambda: pipe_bytes(fd) == 0, message="tailrabbit reading the first half")
    return fd



def test_a_reload_that_restarts_a_fifo_input_does_not_tear_the_line_being_written(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """SIGHUP changing a reading key (max_line_bytes) of a FIFO input while its writer is
    mid-line. The writer never loses its reader (the new one opens first): no fault at
    all. The old reader's unterminated tail is spooled as a line of its own, the new
    reader reads the rest as another: one line arrives as two messages."""
    path = str(tmp_path / "web.fifo")
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
    proc = tailrabbit_factory(config)
    fd = _write_first_half(path)
    broker.wait_depth(queue_name, 1)
    config["input:web"]["max_line_bytes"] = 4096
    write_config(tmp_path / "tailrabbit.ini", config)
    proc.signal(signal.SIGHUP)
    proc.wait_for_event("reloaded")
    os.write(fd, b"second half\n")
    os.write(fd, b"complete 2\n")
    os.close(fd)
    wait_for(lambda: broker.depth(queue_name) >= 3
             and stats_count(proc, "web", "confirmed") >= stats_count(proc, "web", "read"),
             message="every line read confirmed")
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == [
        b"complete 1", b"first half|second half", b"complete 2"]



def test_sigterm_while_a_fifo_writer_is_mid_line_does_not_tear_it(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """A graceful restart (SIGTERM, start) while nginx or an app holds the FIFO open and
    is mid-line. The unterminated tail is not the writer's last line (the writer is still
    there), yet it is spooled and published as one, and the next run publishes the rest
    of the line as another: torn, with the broker up the whole time."""
    path = str(tmp_path / "web.fifo")
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
    first = tailrabbit_factory(config, name="first")
    fd = _write_first_half(path)
    broker.wait_depth(queue_name, 1)
    assert first.stop() == 0, first.log()
    second = tailrabbit_factory(config, name="second")
    wait_for(lambda: reader_present(path), message="the second run reading the FIFO")
    os.write(fd, b"second half\n")
    os.write(fd, b"complete 2\n")
    os.close(fd)
    wait_for(lambda: broker.depth(queue_name) >= 3
             and stats_count(second, "web", "confirmed")
             >= stats_count(second, "web", "read"), message="every line confirmed")
    assert second.stop() == 0, second.log()
    assert [m.body for m in broker.consume_all(queue_name)] == [
        b"complete 1", b"first half|second half", b"complete 2"]


def test_a_kept_line_whose_writer_left_while_stopped_is_a_line_of_its_own(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """The writer holds the FIFO mid-line at the stop (the line is kept), then goes away
    before the next start: its line ended without a "\n". The next start publishes it
    as it is, and the next writer's first line is not glued to it."""
    path = str(tmp_path / "web.fifo")
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
    first = tailrabbit_factory(config, name="first")
    fd = _write_first_half(path)
    broker.wait_depth(queue_name, 1)
    assert first.stop() == 0, first.log()
    assert first.logged("unfinished_line_kept", "kept 11 bytes"), first.log()
    os.close(fd)                             # gone while nobody read
    second = tailrabbit_factory(config, name="second")
    second.wait_for_event("unfinished_line_resumed", containing="a line of its own")
    fd = open_writer(path)
    os.write(fd, b"next writer\n")
    os.close(fd)
    broker.wait_depth(queue_name, 3)
    assert second.stop() == 0, second.log()
    assert [m.body for m in broker.consume_all(queue_name)] == [
        b"complete 1", b"first half|", b"next writer"]


def test_a_stop_after_the_writer_left_reads_the_fifo_to_its_end(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """tailrabbit frozen (SIGSTOP) while a writer writes its last lines, the last without
    "\n", and closes; then SIGTERM and SIGCONT. Whether the reader sees the data before
    the stop or not, the pipe dies with our descriptor: every line is read and delivered,
    the last as a line of its own, nothing kept."""
    path = str(tmp_path / "web.fifo")
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
    proc = tailrabbit_factory(config)
    fd = open_writer(path)
    os.write(fd, b"line 0\n")
    broker.wait_depth(queue_name, 1)
    expected = [b"line %d" % i for i in range(200)] + [b"the last, unterminated"]
    proc.signal(signal.SIGSTOP)
    os.write(fd, b"".join(line + b"\n" for line in expected[1:-1]) + expected[-1])
    os.close(fd)
    proc.signal(signal.SIGTERM)
    proc.signal(signal.SIGCONT)
    assert proc.wait(30) == 0, proc.log()
    assert not proc.logged("unfinished_line_kept"), proc.log()
    if proc.logged("unconfirmed_spooled"):  # a slow broker: delivered by the next run
        again = tailrabbit_factory(config, name="again")
        broker.wait_depth(queue_name, len(expected), timeout=30)
        assert again.stop() == 0, again.log()
    assert [m.body for m in broker.consume_all(queue_name)] == expected


# ---- checked and fine: kept as coverage ------------------------------------------------

def test_fifo_truncation_inside_a_multibyte_char_across_reads_is_byte_exact(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """max_line_bytes cutting inside a UTF-8 sequence, the line arriving one byte per read,
    with \\r\\n, NUL and a line of exactly the limit: bodies are the bytes, cut at the
    limit, flagged truncated only when cut; the discarded rest never becomes a line."""
    path = str(tmp_path / "cut.fifo")
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name,
                           "max_line_bytes": 10}
    proc = tailrabbit_factory(config)
    sent = [b"abcdefghi\xc3\xa9xyz",            # cut after the first byte of \xc3\xa9
            b"crlf\x00nul\r",                   # 9 bytes + \r = 10: exact, not cut
            b"0123456789",                      # exactly the limit
            b"01234567890",                     # one over
            "\u4e2d\u6587\u4e2d\u6587".encode(),   # 12 bytes: cut inside the 4th char
            b"after"]
    data = b"\n".join(sent) + b"\n"
    fd = open_writer(path)
    for byte in range(len(data)):               # one byte per read
        os.write(fd, data[byte:byte + 1])
        wait_for(lambda: pipe_bytes(fd) == 0, message="the byte read")
    os.close(fd)
    broker.wait_depth(queue_name, len(sent))
    assert proc.stop() == 0, proc.log()
    messages = broker.consume_all(queue_name)
    assert [m.body for m in messages] == [line[:10] for line in sent]
    flagged = [bool((m.properties.get("application_headers") or {}).get("truncated"))
               for m in messages]
    assert flagged == [len(line) > 10 for line in sent]


def test_a_fifo_input_removed_and_added_back_while_its_spool_holds_lines_keeps_order(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    """Broker away, a FIFO spools; SIGHUP removes the input, a second SIGHUP adds it back
    (the spool and its replay are the same ones), new lines follow; the broker returns:
    every line once, in order."""
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    path = str(tmp_path / "web.fifo")
    proxied_config["tailrabbit"]["buffer"] = 20
    proxied_config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
    keep = {"type": "fifo", "path": str(tmp_path / "other.fifo"),
            "queue": queue_name + "-other"}
    broker.queues.append(queue_name + "-other")
    proxied_config["input:other"] = keep
    proc = tailrabbit_factory(proxied_config)
    before = [b"before %04d %s" % (i, b"x" * 50) for i in range(500)]
    fd = open_writer(path)
    os.write(fd, b"".join(line + b"\n" for line in before))
    wait_for(lambda: stats_count(proc, "web", "read") == 500, message="lines read")
    os.close(fd)
    web = proxied_config.pop("input:web")
    write_config(tmp_path / "tailrabbit.ini", proxied_config)
    proc.signal(signal.SIGHUP)
    wait_for(lambda: len(proc.logged("reloaded")) == 1, message="first reload")
    proxied_config["input:web"] = web
    write_config(tmp_path / "tailrabbit.ini", proxied_config)
    proc.signal(signal.SIGHUP)
    wait_for(lambda: len(proc.logged("reloaded")) == 2, message="second reload")
    after = [b"after %04d" % i for i in range(100)]
    fd = open_writer(path)
    os.write(fd, b"".join(line + b"\n" for line in after))
    os.close(fd)
    wait_for(lambda: stats_count(proc, "web", "read") == 600, message="new lines read")
    proxy.set_mode("pass")
    broker.wait_depth(queue_name, 600, timeout=60)
    wait_for(lambda: stats_count(proc, "web", "confirmed") >= 600, message="confirms")
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == before + after


def test_nacks_then_a_connection_cut_before_the_rest_confirm_lose_nothing(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    """A full queue (x-overflow = reject-publish) nacks most of a burst: the input is
    parked with its unconfirmed lines set aside; the connection is then cut before they
    go again. As the queue is drained in rounds, every line arrives, first arrivals in
    order, and a line is repeated only if it was unconfirmed at a park or at the cut."""
    import json
    import re
    from helpers import check_at_least_once
    arguments = {"x-max-length": 50, "x-overflow": "reject-publish"}
    broker.declare(queue_name, durable=True, auto_delete=False, arguments=arguments)
    path = str(tmp_path / "full.fifo")
    proxied_config["input:full"] = {"type": "fifo", "path": path, "queue": queue_name,
                                    "arguments": json.dumps(arguments)}
    proc = tailrabbit_factory(proxied_config)
    expected = [b"full %04d" % i for i in range(300)]
    fd = open_writer(path)
    os.write(fd, b"".join(line + b"\n" for line in expected))
    os.close(fd)
    proc.wait_for_event("input_parked", containing="input full ")
    proxy.cut()                              # the rest never confirmed on this connection
    bodies = consume_until(queue_name, set(expected), timeout=60)
    wait_for(lambda: stats_count(proc, "full", "confirmed") >= 300, message="confirms")
    assert proc.stop() == 0, proc.log()
    bodies.extend(m.body for m in broker.consume_all(queue_name))
    duplicates = check_at_least_once(bodies, expected)
    log = proc.log()
    bound = sum(int(n) for n in re.findall(r"\((\d+) unconfirmed lines set aside", log)) \
        + sum(int(n) for n in re.findall(r"; (\d+) lines to publish again", log))
    assert duplicates <= bound, f"{duplicates} repeated, at most {bound} were unconfirmed"


def consume_until(queue, wanted, timeout):
    """Consume `queue` continuously (a consumer always attached, so the queue never sits
    full) until every body of `wanted` arrived; returns the bodies in order."""
    import socket
    import time
    from helpers import connect
    bodies = []
    connection = connect()
    channel = connection.channel()
    channel.basic_qos(0, 1000, False)
    channel.basic_consume(queue, no_ack=True, callback=lambda m: bodies.append(m.body))
    deadline = time.monotonic() + timeout
    try:
        while not wanted <= set(bodies):
            assert time.monotonic() < deadline, (
                f"{len(wanted - set(bodies))} lines missing after {timeout} s")
            try:
                connection.drain_events(timeout=0.2)
            except socket.timeout:
                pass
    finally:
        connection.close()
    return bodies


def test_a_full_reject_publish_queue_drained_between_retries_lets_the_input_progress(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """A durable queue at x-max-length with reject-publish, a consumer that empties it now
    and then (slower than the producer: what such a queue is for). At each retry the
    broker stores the first 50 lines it has room for and nacks the next one at once; the
    acks of the 50 stored ones follow only after their fsync. The nack parks the input and
    forgets its channel, so those late acks confirm nothing: the same 50 lines are set
    aside and published again at every retry. The input never got past its first 50
    lines and the consumer received them again and again (fixed: the lines before the
    nacked one wait for their acks, the batch is split at the nacked tag)."""
    import json
    arguments = {"x-max-length": 50, "x-overflow": "reject-publish"}
    broker.declare(queue_name, durable=True, auto_delete=False, arguments=arguments)
    path = str(tmp_path / "full.fifo")
    config["input:full"] = {"type": "fifo", "path": path, "queue": queue_name,
                            "arguments": json.dumps(arguments)}
    proc = tailrabbit_factory(config)
    expected = [b"full %04d" % i for i in range(300)]
    fd = open_writer(path)
    os.write(fd, b"".join(line + b"\n" for line in expected))
    os.close(fd)
    bodies = []
    for round_ in range(1, 6):              # retries after 0.25, 0.5, 1, 2, 4 s
        wait_for(lambda: len(proc.logged("input_parked", "input full ")) >= round_,
                 timeout=30, message=f"park {round_}")
        broker.wait_depth(queue_name, 50)
        bodies.extend(m.body for m in broker.consume_all(queue_name, settle=0.1))
    distinct = len(set(bodies))
    parks = proc.logged("input_parked", "input full ")
    assert distinct >= 200, (
        f"after 5 rounds of 50 free places, {len(bodies)} messages consumed but only "
        f"{distinct} distinct lines ({len(bodies) - distinct} repeats); parks: "
        + " | ".join(p.split("; ")[-1] for p in parks))




def test_a_reload_that_restarts_a_fifo_input_does_not_split_the_event_being_written(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """The same with multiline = python: a traceback being written when a SIGHUP
    restarts the input (overflow changed) is published as two events."""
    path = str(tmp_path / "api.fifo")
    config["input:api"] = {"type": "fifo", "path": path, "queue": queue_name,
                           "multiline": "python", "multiline_timeout": 30}
    proc = tailrabbit_factory(config)
    fd = open_writer(path)
    os.write(fd, b"INFO first\nERROR boom\nTraceback (most recent call last):\n"
                 b"  File \"app.py\", line 1, in <module>\n")
    wait_for(lambda: pipe_bytes(fd) == 0, message="the first part read")
    broker.wait_depth(queue_name, 1)
    config["input:api"]["overflow"] = "block"
    write_config(tmp_path / "tailrabbit.ini", config)
    proc.signal(signal.SIGHUP)
    proc.wait_for_event("reloaded")
    os.write(fd, b"KeyError: 1\nINFO next\n")
    os.close(fd)                             # the writer closes: the last event is done
    wait_for(lambda: broker.depth(queue_name) >= 3
             and stats_count(proc, "api", "confirmed") >= stats_count(proc, "api", "read"),
             message="every event confirmed")
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == [
        b"INFO first",
        b"ERROR boom\nTraceback (most recent call last):\n"
        b"  File \"app.py\", line 1, in <module>\nKeyError: 1",
        b"INFO next"]
