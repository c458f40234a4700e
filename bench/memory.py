"""Memory rows of the benchmark (bench/run.py): tailrabbit's RSS with the broker away.

    idle                       a FIFO input, nothing written
    100,000 lines of 200 B     written, all held in memory (overflow = block)
    600 MiB of 512 KiB lines   1,200 lines written at once (overflow = spool, the FIFO
                               default), beside each buffer_bytes: the peak RSS, sampled
                               every 20 ms until reading stopped

The broker is a closed port: tailrabbit keeps retrying and holds or spools what it reads.
With `before` (a checkout of an older tailrabbit) the same rows are measured for it in the
same run, without buffer_bytes (which it would not know).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

MiB = 1 << 20
LONG_LINE = 512 * 1024
LONG_LINES = 1200                   # 600 MiB


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fifo_writer(fifo, timeout=20):
    """Open the FIFO for writing once tailrabbit reads it (a non-blocking open fails
    before); returns a blocking descriptor."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.set_blocking(fd, True)
            return fd
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class PeakRss:
    """The peak RSS of a process, sampled every 20 ms in a thread."""

    def __init__(self, pid):
        self.pid, self.peak = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            self._stop.wait(0.02)

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        return self.peak


def _start(root, tmp, name, overflow, buffer_bytes=None):
    """tailrabbit from `root` on one FIFO input, its broker a closed port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    state = os.path.join(tmp, f"state-{name}")
    shutil.rmtree(state, ignore_errors=True)
    fifo = os.path.join(tmp, f"{name}.fifo")
    config = os.path.join(tmp, f"{name}.ini")
    process = f"buffer_bytes = {buffer_bytes}\n" if buffer_bytes else ""
    with open(config, "w") as handle:
        handle.write(f"[tailrabbit]\nstate_dir = {state}\nstats_interval = 0\n"
                     f"buffer = 100000\n{process}\n"
                     f"[rabbitmq]\nhost = 127.0.0.1\nport = {closed_port}\nrefresh = None\n\n"
                     f"[input:web]\ntype = fifo\npath = {fifo}\nqueue = bench-rss\n"
                     f"overflow = {overflow}\n")
    proc = subprocess.Popen([sys.executable, "-m", "tailrabbit", "-c", config, "-l", "ERROR"],
                            cwd=root, stderr=subprocess.DEVNULL)
    return proc, open_fifo_writer(fifo)


def _settled_peak(proc, sampler, timeout=60):
    """Wait until the RSS stops growing (reading stopped), then the peak seen."""
    end, last = time.monotonic() + timeout, -1
    while time.monotonic() < end:
        rss = rss_kib(proc.pid)
        if rss == last:
            break
        last = rss
        time.sleep(1.0)
    return sampler.stop()


def _stop(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def idle_and_short_lines(root, tmp, size):
    """(idle RSS, RSS with 100,000 lines of `size` bytes held), KiB."""
    proc, fd = _start(root, tmp, "short", "block")
    try:
        time.sleep(1.0)
        idle = rss_kib(proc.pid)
        sampler = PeakRss(proc.pid)
        os.write(fd, (b"x" * (size - 1) + b"\n") * 100000)
        os.close(fd)
        held = _settled_peak(proc, sampler)
    finally:
        _stop(proc)
    return idle, held


def long_line_burst(root, tmp, buffer_bytes):
    """(peak RSS, seconds the writer took) for 600 MiB of 512 KiB lines offered at once."""
    proc, fd = _start(root, tmp, "long", "spool", buffer_bytes)
    filler = b"x" * (LONG_LINE - 10)
    try:
        time.sleep(1.0)
        sampler = PeakRss(proc.pid)
        started = time.monotonic()
        for i in range(LONG_LINES):
            os.write(fd, b"%09d " % i + filler + b"\n")
        wrote = time.monotonic() - started
        os.close(fd)
        peak = _settled_peak(proc, sampler)
    finally:
        _stop(proc)
    return peak, wrote


def memory(args, tmp, root, before=None):
    builds = [("this tree", root)] + ([("before", before)] if before else [])
    print(f"\n## Memory: RSS with the broker away (FIFO input)")
    print(f"{'build':<10} {'case':<44} {'buffer_bytes':>13} {'RSS MiB':>8} {'vs idle':>8}")
    for label, where in builds:
        idle, held = idle_and_short_lines(where, tmp, args.size)
        print(f"{label:<10} {'idle':<44} {'':>13} {idle / 1024:>8.1f} {'':>8}")
        print(f"{label:<10} {f'100,000 lines of {args.size} B held':<44} {'':>13} "
              f"{held / 1024:>8.1f} {held / idle:>7.1f}x")
        for buffer_bytes in ((256 * MiB, 64 * MiB) if label == "this tree" else (None,)):
            peak, wrote = long_line_burst(where, tmp, buffer_bytes)
            case = f"600 MiB of 512 KiB lines (written in {wrote:.1f} s)"
            bound = f"{buffer_bytes // MiB} MiB" if buffer_bytes else "none"
            print(f"{label:<10} {case:<44} {bound:>13} {peak / 1024:>8.1f} "
                  f"{peak / idle:>7.1f}x")
