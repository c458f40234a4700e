"""Hostile review of the pipe inputs (fifo, stdin), the spool and the stop/reload paths:
scenarios where a line could be lost, torn, merged or repeated without a fault to explain
it. Each test states what the contract promises and compares the queue byte for byte.
(The scenarios found broken are in the review report, not here.)"""

import fcntl
import os
import signal
import termios

from helpers import wait_for, write_config
from integration.test_fifo import open_writer


def pipe_bytes(fd):
    """Bytes waiting in the pipe `fd` belongs to (FIONREAD works on either end)."""
    import array
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf, True)
    return buf[0]


def stats_count(proc, name, key):
    import re
    before = proc.log().count(f"stats input={name} ")
    proc.signal(signal.SIGUSR1)
    wait_for(lambda: proc.log().count(f"stats input={name} ") > before, timeout=10,
             message="a stats line (SIGUSR1)")
    line = [row for row in proc.log().splitlines() if f"stats input={name} " in row][-1]
    return int(re.search(rf"\b{key}=(\d+)", line).group(1))


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
