"""The memory buffer is bounded in bytes too (`[tailrabbit] buffer_bytes`): a burst of long
lines while the broker is away must not grow the process beyond that bound, whatever the
input's overflow policy (spool for a FIFO, block for a file and stdin), and nothing is lost.

RSS is read from /proc/PID/status (VmRSS) by a sampling thread, every 20 ms, from before the
burst until every line was read. The bound asserted is the RSS of the idle process plus
`buffer_bytes` plus MARGIN. MARGIN (24 MiB) covers what is not the buffer: the splitter's
unterminated line and the copies it makes while a long line arrives in pipe-sized reads
(a few times the line), the batch the spool replay greenlet holds while it waits for room,
the spool's encoding of one batch, and the allocator keeping freed blocks of long lines
for reuse (glibc raises its mmap threshold after the first free, so later long lines come
from the heap and the heap only shrinks from its top). Without the byte bound these tests
see the whole burst in memory (200 MiB and 75 MiB), far beyond any of that.

The FIFO test is the issue's case at full size: 1,200 lines of 512 KiB (600 MiB, about
ten times buffer_bytes = 64 MiB; the line bound of 100,000 is never near). It runs in
about 10 s here; should it grow slow, 400 lines with buffer_bytes = 16 MiB is the same proof.
"""

import os
import signal
import subprocess
import threading
import time

from helpers import wait_for
from integration.test_fifo import open_writer

MiB = 1 << 20
MARGIN = 24 * MiB
LINE_BYTES = 512 * 1024
FILLER = bytes(b for b in range(256) if b != 10) * (LINE_BYTES // 255 + 1)


def long_line(i, size=LINE_BYTES):
    """Line i: distinct (numbered), every byte value but "\\n", exactly `size` bytes."""
    prefix = b"%08d " % i
    return prefix + FILLER[:size - len(prefix)]


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """The peak RSS of a process, sampled every 20 ms in a thread until stopped."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except OSError:
                return
            self._stop.wait(0.02)


def stats(proc):
    """The latest stats line of the input, as a dict (SIGUSR1, then its log line)."""
    before = proc.log().count("stats input=")
    proc.signal(signal.SIGUSR1)
    wait_for(lambda: proc.log().count("stats input=") > before, message="a stats line")
    line = [li for li in proc.log().splitlines() if "stats input=" in li][-1]
    return dict(field.split("=", 1) for field in line.split("stats ", 1)[1].split()
                if "=" in field)


def idle_rss(proc):
    proc.wait_for_event("no_broker_answered")
    return rss_bytes(proc.pid)


def consume_checked(broker, queue, count):
    bodies = [m.body for m in broker.consume_all(queue)]
    assert len(bodies) == count, f"{len(bodies)} of {count} lines in the queue"
    for i, body in enumerate(bodies):
        assert body == long_line(i, len(body)), f"line {i} differs or is out of order"
    return bodies


def test_a_burst_of_long_lines_into_a_fifo_spools_beyond_buffer_bytes(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    count, buffer_bytes = 1200, 64 * MiB
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    proxied_config["tailrabbit"]["buffer_bytes"] = buffer_bytes
    path = str(tmp_path / "web.fifo")
    proxied_config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
    proc = tailrabbit_factory(proxied_config)
    fd = open_writer(path)
    idle = idle_rss(proc)
    done = threading.Event()

    def write():
        for i in range(count):
            os.write(fd, long_line(i) + b"\n")
        done.set()
    with RssSampler(proc.pid) as sampler:
        started = time.monotonic()
        threading.Thread(target=write, daemon=True).start()
        assert done.wait(20), "the FIFO writer blocked while the broker was down"
        wrote = time.monotonic() - started
        os.close(fd)
        figures = wait_for(lambda: (lambda s: s if s["read"] == str(count) else None)(
            stats(proc)), message=f"{count} lines read")
    assert broker.depth(queue_name) == 0
    assert 0 < int(figures["spooled"]) < count            # the rest went to disk
    held = int(figures["buffered_bytes"])
    assert buffer_bytes <= held < buffer_bytes + LINE_BYTES + 64
    assert sampler.peak - idle < buffer_bytes + MARGIN, (
        f"RSS grew {(sampler.peak - idle) / MiB:.0f} MiB with buffer_bytes = 64 MiB")
    proxy.set_mode("pass")
    back = time.monotonic()
    with RssSampler(proc.pid) as drain:
        broker.wait_depth(queue_name, count, timeout=60)
    took = time.monotonic() - back
    assert proc.stop() == 0, proc.log()
    consume_checked(broker, queue_name, count)
    print(f"fifo: {count} x 512 KiB written in {wrote:.1f} s, {figures['spooled']} lines "
          f"spooled; RSS idle {idle / MiB:.0f} MiB, peak +{(sampler.peak - idle) / MiB:.0f} "
          f"MiB during the outage (buffer_bytes 64 MiB), +{(drain.peak - idle) / MiB:.0f} "
          f"MiB while draining; all in the queue {took:.1f} s after the broker came back")


def test_a_file_of_long_lines_blocks_at_buffer_bytes_and_loses_nothing(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    count, size, buffer_bytes = 300, 256 * 1024, 1 * MiB
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    path = tmp_path / "api.log"
    path.write_bytes(b"")                       # written after the idle RSS is taken
    proxied_config["tailrabbit"]["buffer_bytes"] = buffer_bytes
    proxied_config["input:api"] = {"type": "file", "path": str(path), "queue": queue_name,
                                   "start_at": "beginning", "max_line_bytes": size}
    proc = tailrabbit_factory(proxied_config)
    idle = idle_rss(proc)
    with RssSampler(proc.pid) as sampler:
        with open(path, "ab") as handle:        # 75 MiB: 75 times buffer_bytes
            for i in range(count):
                handle.write(long_line(i, size) + b"\n")
        figures = wait_for(lambda: (lambda s: s if int(s["buffered_bytes"]) >= buffer_bytes
                                    else None)(stats(proc)), message="the buffer full")
        again = stats(proc)                       # blocked: reading stopped at the bound
    assert figures["read"] == again["read"] and int(again["read"]) < count // 10
    assert sampler.peak - idle < buffer_bytes + MARGIN, (
        f"RSS grew {(sampler.peak - idle) / MiB:.0f} MiB with buffer_bytes = 1 MiB")
    proxy.set_mode("pass")
    broker.wait_depth(queue_name, count, timeout=60)
    assert proc.stop() == 0, proc.log()
    consume_checked(broker, queue_name, count)
    print(f"file: read stopped at {again['read']} lines ({again['buffered_bytes']} bytes "
          f"held); RSS peak +{(sampler.peak - idle) / MiB:.0f} MiB; all {count} delivered")


def test_stdin_of_long_lines_blocks_at_buffer_bytes_and_loses_nothing(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    count, size, buffer_bytes = 300, 256 * 1024, 1 * MiB
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    proxied_config["tailrabbit"]["buffer_bytes"] = buffer_bytes
    proxied_config["input:in"] = {"type": "stdin", "queue": queue_name,
                                  "max_line_bytes": size}
    proc = tailrabbit_factory(proxied_config, stdin=subprocess.PIPE)
    pipe = proc.process.stdin
    idle = idle_rss(proc)
    done = threading.Event()

    def write():
        for i in range(count):
            pipe.write(long_line(i, size) + b"\n")
        pipe.close()
        done.set()
    with RssSampler(proc.pid) as sampler:
        threading.Thread(target=write, daemon=True).start()
        figures = wait_for(lambda: (lambda s: s if int(s["buffered_bytes"]) >= buffer_bytes
                                    else None)(stats(proc)), message="the buffer full")
        again = stats(proc)
    assert not done.is_set()                        # the writer waits: overflow = block
    assert figures["read"] == again["read"] and int(again["read"]) < count // 10
    assert sampler.peak - idle < buffer_bytes + MARGIN, (
        f"RSS grew {(sampler.peak - idle) / MiB:.0f} MiB with buffer_bytes = 1 MiB")
    proxy.set_mode("pass")
    assert done.wait(60), "the stdin writer never finished"
    assert proc.wait(60) == 0, proc.log()           # stdin EOF: every line confirmed
    consume_checked(broker, queue_name, count)
    print(f"stdin: read stopped at {again['read']} lines; RSS peak "
          f"+{(sampler.peak - idle) / MiB:.0f} MiB; all {count} delivered")
