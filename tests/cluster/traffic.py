"""Test-side tools of the cluster scenarios: a consumer that notes when each line arrived
(to measure stalls), reconnect times read from tailrabbit's log, a writer whose own time
shows whether it was ever blocked, and per-scenario figures printed for the report."""

import os
import re
import socket
import threading
import time

import amqp

from helpers import LineWriter, check_at_least_once, connect

# tailrabbit's log with a float timestamp (1 s resolution is too coarse for recovery times),
# and the event name as in helpers.LOG_FORMAT
LOG_FORMAT = "%%(created).3f - %%(levelname)s - [%%(event)s] %%(message)s"
_LINE = re.compile(r"^(\d+\.\d+) - (\w+) - \[(\w+)\] (.*)$")


def log_events(proc):
    """[(epoch seconds, level, event, message)] of a tailrabbit log written in LOG_FORMAT."""
    out = []
    for line in proc.log().splitlines():
        match = _LINE.match(line)
        if match:
            out.append((float(match.group(1)), *match.group(2, 3, 4)))
    return out


def reconnects(proc):
    """[(seconds from a connection_lost of X to the next connected to Y, X, Y)]."""
    out, lost = [], None
    for stamp, _level, event, message in log_events(proc):
        if event == "connection_lost":          # "connection to ADDRESS lost: ..."
            lost = (stamp, message.split()[2])
        elif event == "connected" and lost is not None:     # "connected to ADDRESS ..."
            out.append((stamp - lost[0], lost[1], message.split()[2]))
            lost = None
    return out


def parked_retries(proc):
    """[(epoch seconds, announced retry delay)] of each input_parked event ("..., retrying
    in 0.3 s"): when tailrabbit set an input aside and when it said it would try again."""
    out = []
    for stamp, _level, event, message in log_events(proc):
        match = re.search(r"retrying in ([\d.]+) s", message) if event == "input_parked" else None
        if match:
            out.append((stamp, float(match.group(1))))
    return out


def unconfirmed_at_losses(proc):
    """Lines tailrabbit had to publish again, summed over its connection losses."""
    return sum(int(m) for m in re.findall(r"lost: .*?; (\d+) lines to publish again",
                                          proc.log()))


class TimedWriter(LineWriter):
    """A LineWriter that notes its longest single write: a FIFO writer tailrabbit blocked
    (stopped reading for longer than the pipe buffer lasts) shows it there. Its total time
    would not: two cores shared with a booting node delay the writer thread itself."""

    def start(self):
        self.longest_write = 0.0
        self.began = time.monotonic()
        self.limit = self.count
        return super().start()

    def finish_after(self, lines):
        """Write `lines` more, then stop (`count` becomes what was written): traffic that
        lasts as long as a fault takes, whatever the machine's speed."""
        self.limit = min(self.count, self.written + lines)

    def _run(self):
        real_write = os.write

        def timed_write(fd, data):
            began = time.monotonic()
            try:
                return real_write(fd, data)
            finally:
                self.longest_write = max(self.longest_write, time.monotonic() - began)
        self._write = timed_write
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            started = time.monotonic()
            step = max(1, self.per_second // 100)
            for start in range(0, self.count, step):
                if start >= self.limit:
                    break
                end = min(self.limit, start + step)
                timed_write(self._fd, b"".join(b"%s %07d\n" % (self.prefix, i)
                                               for i in range(start, end)))
                self.written = end
                delay = started + end / self.per_second - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        finally:
            os.close(self._fd)
            self.count = self.written

    def join(self, timeout=60):
        super().join(timeout)
        self.took = time.monotonic() - self.began
        return self


class Consumer:
    """Consumes a queue in a thread from the start of a scenario, noting arrival times."""

    def __init__(self, address, queue, stream_offset=None):
        self.address, self.queue = address, queue
        self.arrivals = []          # (monotonic, body)
        self._stop = threading.Event()
        self._stream_offset = stream_offset
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        try:
            connection = connect(self.address)
            channel = connection.channel()
            channel.basic_qos(0, 2000, False)
            arguments = None
            if self._stream_offset is not None:   # streams: acks required, offset given
                arguments = {"x-stream-offset": self._stream_offset}

            def on_message(message):
                self.arrivals.append((time.monotonic(), message.body))
                if arguments:
                    channel.basic_ack(message.delivery_tag)
            channel.basic_consume(self.queue, no_ack=not arguments, callback=on_message,
                                  arguments=arguments)
            while not self._stop.is_set():
                try:
                    connection.drain_events(timeout=0.2)
                except socket.timeout:
                    pass
            connection.close()
        except Exception as error:      # reported by stop()
            self.error = error

    def bodies(self):
        return [body for _, body in self.arrivals]

    def wait_count(self, count, timeout=60):
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count and time.monotonic() < deadline:
            assert self.error is None, self.error
            time.sleep(0.05)
        assert len(self.arrivals) >= count, \
            f"{count} lines expected in {self.queue}, {len(self.arrivals)} arrived"

    def stop(self):
        self._stop.set()
        self.thread.join(10)
        assert self.error is None, self.error

    def longest_gap(self, since=0.0, until=float("inf")):
        """The longest time between two arrivals within [since, until] (a stall)."""
        times = [stamp for stamp, _ in self.arrivals if since <= stamp <= until]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)

    def resumed(self, moment, written):
        """Seconds from `moment` until the first line numbered `written` or later (one
        written after it) arrived: when delivery resumed end to end."""
        return next(stamp for stamp, body in self.arrivals
                    if int(body.split()[1]) >= written) - moment


def report(what, bodies, expected, **figures):
    """Check at-least-once and order; print the scenario's figures; return duplicates."""
    duplicates = check_at_least_once(bodies, expected)
    extra = ", ".join(f"{key} {value:.2f}" if isinstance(value, float) else
                      f"{key} {value}" for key, value in figures.items())
    print(f"\n[cluster] {what}: {len(expected)} lines, lost 0, duplicates {duplicates}"
          + (f", {extra}" if extra else ""))
    return duplicates


def declare_on(node, queue, **arguments):
    """Declare a durable queue through a connection to `node` (a quorum queue's leader,
    a classic queue's home, is where it was declared)."""
    connection = amqp.Connection(node.address)
    connection.connect()
    try:
        connection.channel().queue_declare(queue, durable=True, auto_delete=False,
                                           arguments=arguments or None)
    finally:
        connection.close()
