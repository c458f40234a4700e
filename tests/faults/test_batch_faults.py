"""Batched inputs under faults: a broker cut, SIGKILL and resume, a full buffer with the
broker away (spool). A batched message is confirmed or not as a whole; every line comes
back (split bodies on "\\n"), in order, repeated only if its message was unconfirmed."""

import os
import signal
import threading

from helpers import LineWriter, check_at_least_once, wait_for
from integration.test_batches import _stats, unbatch
from integration.test_fifo import open_writer


def lines_of(messages):
    return [line for line, _, _ in unbatch(messages)]


def test_cut_under_batched_traffic_loses_nothing(broker, proxied_config, proxy, queue_name,
                                                 tailrabbit_factory, tmp_path):
    path = str(tmp_path / "web.fifo")
    proxied_config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name,
                                   "batch_lines": 100}
    proc = tailrabbit_factory(proxied_config)
    os.close(open_writer(path))
    writer = LineWriter(path, 30000, 5000).start()
    wait_for(lambda: writer.written > 10000, message="traffic")
    proxy.cut()
    writer.join()
    proc.wait_for_event("connection_lost")
    wait_for(lambda: "confirmed=30000" in _stats(proc), timeout=30,
             message="every line confirmed")
    assert proc.stop() == 0, proc.log()
    lines = lines_of(broker.consume_all(queue_name))
    duplicates = check_at_least_once(lines, writer.expected())
    # what was unconfirmed at the cut: at most a confirm round of 5,000 lines/s traffic
    assert duplicates <= 5000, duplicates
    print(f"cut under batches: 0 lost, {duplicates} duplicates")


def test_sigkill_resume_with_batches_repeats_only_a_contiguous_unconfirmed_run(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    log_path = str(tmp_path / "api.log")
    config["input:api"] = {"type": "file", "path": log_path, "queue": queue_name,
                           "start_at": "beginning", "batch_lines": 100}
    writer = LineWriter(log_path, 40000, 8000).start()
    first = tailrabbit_factory(config, name="first")
    wait_for(lambda: writer.written > 15000, message="traffic")
    first.process.send_signal(signal.SIGKILL)
    first.wait(10)
    second = tailrabbit_factory(config, name="second")
    writer.join()
    size = os.path.getsize(log_path)
    wait_for(lambda: _checkpointed(config, "api") == size, timeout=30,
             message="the checkpoint at the file's end")
    assert second.stop() == 0, second.log()
    lines = lines_of(broker.consume_all(queue_name))
    duplicates = check_at_least_once(lines, writer.expected())
    # the repeats are one run: the lines after the last saved checkpoint
    seen, first_repeat = set(), None
    for index, line in enumerate(lines):
        if line in seen:
            first_repeat = index
            break
        seen.add(line)
    if duplicates:
        start = writer.expected().index(lines[first_repeat])
        assert lines[first_repeat:first_repeat + duplicates] == \
            writer.expected()[start:start + duplicates]
    # checkpoints are saved every second: at most ~2 s of 8,000 lines/s come again
    assert duplicates <= 16000, duplicates
    print(f"SIGKILL with batches: 0 lost, {duplicates} lines repeated")


def _checkpointed(config, name):
    """The offset saved in the input's checkpoint file (the confirmed end), or None."""
    import json
    path = os.path.join(config["tailrabbit"]["state_dir"], f"checkpoints-{name}.json")
    try:
        with open(path) as handle:
            files = json.load(handle)["files"]
    except (OSError, ValueError, KeyError):
        return None
    return max((item["offset"] for item in files), default=None)


def test_spool_with_batches_replays_every_line_in_order(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    proxied_config["tailrabbit"]["buffer"] = 1000
    path = str(tmp_path / "web.fifo")
    proxied_config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name,
                                   "batch_lines": 100, "compress": "gzip"}
    proc = tailrabbit_factory(proxied_config)
    fd = open_writer(path)
    expected = [b"req %06d %s" % (i, b"z" * 150) for i in range(30000)]
    done = threading.Event()

    def write():
        os.write(fd, b"".join(line + b"\n" for line in expected))
        done.set()
    threading.Thread(target=write, daemon=True).start()
    assert done.wait(30), "the FIFO writer blocked while the broker was down"
    os.close(fd)
    wait_for(lambda: "read=30000" in _stats(proc), message="all lines read")
    last = [line for line in proc.log().splitlines() if "stats input=web" in line][-1]
    assert "spooled=0 " not in last, last           # the buffer of 1000 overflowed
    proxy.set_mode("pass")
    wait_for(lambda: "confirmed=30000" in _stats(proc), timeout=30,
             message="every line confirmed")
    assert proc.stop() == 0, proc.log()
    messages = broker.consume_all(queue_name)
    assert [line for line, _, _ in unbatch(messages, gzipped=True)] == expected
    assert len(messages) < 30000 / 10
