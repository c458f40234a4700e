"""Test helpers: run tailrabbit as a real process, talk to the real broker, wait on
conditions (never sleep-and-hope)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import amqp

BROKER = os.environ.get("TAILRABBIT_TEST_BROKER", "127.0.0.1:5672")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(predicate, timeout=20.0, interval=0.05, message="condition"):
    """Poll `predicate` until it returns a truthy value; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def connect(address=BROKER):
    connection = amqp.Connection(address, socket_settings={socket.TCP_USER_TIMEOUT: 0})
    connection.connect()
    return connection


class Broker:
    """A connection for the test's own checks: queue depth, consuming, cleanup."""

    def __init__(self, address=BROKER):
        self.address = address
        self.connection = connect(address)
        self.channel = self.connection.channel()
        self.queues = []

    def declare(self, queue, **kwargs):
        self.channel.queue_declare(queue, **kwargs)
        self.queues.append(queue)

    def depth(self, queue):
        """Messages ready in `queue`, 0 if it does not exist yet."""
        channel = self.connection.channel()
        try:
            return channel.queue_declare(queue, passive=True).message_count
        except amqp.exceptions.NotFound:
            return 0
        finally:
            if channel.is_open:
                channel.close()

    def wait_depth(self, queue, count, timeout=30.0):
        return wait_for(lambda: self.depth(queue) >= count, timeout,
                        message=f"{count} messages in {queue} (have {self.depth(queue)})")

    def consume_all(self, queue, settle=0.3, timeout=60.0):
        """Every message in `queue` now, as amqp.Message objects, in queue order.

        Reads the queue's depth first and consumes until that many arrived (a pause in
        deliveries on a busy broker is no sign of an empty queue: stopping at the first
        0.3 s gap returned thousands of messages short with tests running in parallel),
        then until `settle` seconds pass without one (anything published since). Fails
        if `timeout` seconds pass without a delivery before the depth is reached (a
        fixed 60 s for all returned 116,660 of 120,011 under load, and a test then
        reported lines "shipped twice" as a negative count)."""
        messages = []
        channel = self.connection.channel()
        depth = channel.queue_declare(queue, passive=True).message_count
        channel.basic_qos(0, 1000, False)
        # acked, not no_ack: a message delivered while the channel closes would be lost
        # (py-amqp drops it), and a test calling this again would never see it
        channel.basic_consume(queue, no_ack=False, callback=messages.append)
        acked = 0

        def ack(lag=0):     # each tag once (acking one twice is a channel error), in steps
            nonlocal acked
            if messages and messages[-1].delivery_tag > acked + lag:
                acked = messages[-1].delivery_tag
                channel.basic_ack(acked, multiple=True)
        while True:
            waiting = len(messages) < depth
            try:
                self.connection.drain_events(timeout=timeout if waiting else settle)
            except socket.timeout:
                if waiting:
                    raise AssertionError(f"consuming {queue}: {len(messages)} of {depth} "
                                         f"messages, then none for {timeout} s") from None
                break
            ack(lag=500)
        ack()
        channel.close()
        return messages

    def reconnect(self):
        """After the broker closed our connection (close_all_connections in a test)."""
        try:
            self.connection.collect()
        except Exception:
            pass
        self.connection = connect(self.address)
        self.channel = self.connection.channel()

    def close(self):
        try:
            for queue in self.queues:
                self.channel.queue_delete(queue)
            self.connection.close()
        except Exception:
            self.reconnect()
            for queue in self.queues:
                self.connection.channel().queue_delete(queue)
            self.connection.close()


# The text format every test runs with (base_config): the default one with the event name
# in brackets, so tests wait on event names (Tailrabbit.wait_for_event) instead of wording,
# and proc.log() stays readable. INI interpolation: %% for %.
LOG_FORMAT = "%%(asctime)s - %%(levelname)s - [%%(event)s] %%(message)s"
# A line of that format (or of any format ending " - LEVEL - [event] message", such as
# cluster/traffic.py's): level, event name, message.
EVENT_LINE = re.compile(r" - ([A-Z]+) - \[(\w+)\] (.*)$")


def text_events(log):
    """[(level, event, message)] of every line of `log` written in such a format."""
    return [match.groups() for match in map(EVENT_LINE.search, log.splitlines()) if match]


def write_config(path, sections):
    """sections: {"rabbitmq": {...}, "input:x": {...}} -> an INI file at path."""
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {value}" for key, value in keys.items())
        lines.append("")
    with open(path, "w") as handle:
        handle.write("\n".join(lines))
    return path


def base_config(state_dir, broker=BROKER, **process):
    host, port = broker.rsplit(":", 1)
    return {
        "tailrabbit": {"state_dir": state_dir, "stats_interval": 0, **process},
        "rabbitmq": {"host": host, "port": port, "refresh": "None", "heartbeat": 10,
                     "connect_timeout": 2},
        "logging": {"log_format": LOG_FORMAT},
    }


class Tailrabbit:
    """A tailrabbit process started the way supervisord starts it."""

    def __init__(self, config_path, log_path, stdin=subprocess.DEVNULL, args=()):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tailrabbit", "-c", config_path, *args],
            stdin=stdin, stdout=self._log, stderr=self._log, cwd=REPO)

    @property
    def pid(self):
        return self.process.pid

    def stacks(self):
        """The running process's Python stacks (py-spy, if installed): for a failure
        message when the process seems stuck."""
        spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
        if self.process.poll() is not None or not os.path.exists(spy):
            return "(no stacks: process ended or py-spy missing)"
        done = subprocess.run([spy, "dump", "--locals", "--pid", str(self.pid)],
                              capture_output=True, text=True, timeout=30)
        return done.stdout + done.stderr

    def stats(self, name):
        """The counters of input `name` (read, published, confirmed, ...) from a fresh
        stats line. SIGUSR1 is sent once the process logged `started`: one sent before
        its handlers exist (Python still importing) kills it."""
        self.wait_for_event("started")
        marker = f"stats input={name} "
        before = self.log().count(marker)
        self.signal(signal.SIGUSR1)
        wait_for(lambda: self.log().count(marker) > before, message=f"a stats line of {name}")
        line = [row for row in self.log().splitlines() if marker in row][-1]
        return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)\b", line)}

    def diagnose(self):
        """For the failure message of a process that seems stuck: its log after SIGUSR1
        (a stats line per input, if the hub still runs: read, published, confirmed,
        buffered) and SIGUSR2 (every greenlet's stack), then its threads' stacks."""
        if self.process.poll() is None:
            for signum, event in ((signal.SIGUSR1, "[stats]"),
                                  (signal.SIGUSR2, "[tasks_dumped]")):
                before = self.log().count(event)
                self.process.send_signal(signum)
                try:
                    wait_for(lambda: self.log().count(event) > before, 3.0,
                             message=event)
                except AssertionError:
                    pass                   # no answer: the hub is blocked
        return f"{self.log()}\n{self.stacks()}"

    def log(self):
        with open(self.log_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def wait_log(self, text, timeout=20.0):
        """Wait for `text` anywhere in the log: for a value or an untouched format; an
        event is waited for by its name (wait_for_event), not its wording."""
        return wait_for(lambda: text in self.log(), timeout, message=f"{text!r} in the log")

    def logged(self, name, containing=""):
        """The messages of the text log's events `name` (LOG_FORMAT), in order; only those
        containing `containing` (a value of one of its fields: a path, an input) if given."""
        return [message for _level, event, message in text_events(self.log())
                if event == name and containing in message]

    def wait_for_event(self, name, timeout=20.0, containing=""):
        """Wait for event `name` in the text log (LOG_FORMAT) and return its message: by
        name rather than wording (with `[logging] style = json`, use wait_event)."""
        def found():
            messages = self.logged(name, containing)
            return messages[0] if messages else None
        what = f"event {name}" + (f" with {containing!r}" if containing else "")
        return wait_for(found, timeout, message=f"{what} in the log")

    def events(self):
        """With `[logging] style = json`: every complete log line, parsed (the line being
        written now is left for the next call; a line that is not JSON fails the test)."""
        text = self.log()
        lines = text.splitlines()
        if lines and not text.endswith("\n"):
            lines.pop()
        parsed = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"not a JSON line: {line!r}") from None
        return parsed

    def wait_event(self, name, timeout=20.0, **fields):
        """With `[logging] style = json`: the first event `name` whose fields include
        `fields` (wait_event("file_rotated", input="app")), by name rather than wording."""
        def found():
            for record in self.events():
                if record["event"] == name and all(
                        key in record and record[key] == value
                        for key, value in fields.items()):
                    return record
            return None
        return wait_for(found, timeout, message=f"event {name} {fields or ''} in the log")

    def signal(self, signum):
        self.process.send_signal(signum)

    def stop(self, timeout=30.0):
        """SIGTERM and wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout=30.0):
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_cli(*args, stdin=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "tailrabbit", *args], input=stdin,
                          capture_output=True, timeout=timeout, cwd=REPO)


class LineWriter:
    """Writes numbered lines into a FIFO or file at a steady rate, in a thread."""

    def __init__(self, path, count, per_second, prefix=b"line", reopen=False):
        """reopen: open, append, close for every write (an app that reopens its log);
        else hold one O_APPEND descriptor (an app that keeps it, as with copytruncate)."""
        import threading
        self.path, self.count, self.per_second, self.prefix = path, count, per_second, prefix
        self.reopen = reopen
        self.written = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def expected(self):
        return [b"%s %07d" % (self.prefix, i) for i in range(self.count)]

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        fd = None if self.reopen else os.open(self.path, flags, 0o644)
        try:
            started = time.monotonic()
            step = max(1, self.per_second // 100)
            for start in range(0, self.count, step):
                end = min(self.count, start + step)
                data = b"".join(b"%s %07d\n" % (self.prefix, i) for i in range(start, end))
                if self.reopen:
                    once = os.open(self.path, flags, 0o644)
                    os.write(once, data)
                    os.close(once)
                else:
                    os.write(fd, data)
                self.written = end
                delay = started + end / self.per_second - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        finally:
            if fd is not None:
                os.close(fd)

    def join(self, timeout=60):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the writer did not finish"


def check_at_least_once(bodies, expected):
    """Every expected line arrived, first arrivals in order; returns the duplicate count."""
    seen, first = set(), []
    for body in bodies:
        if body not in seen:
            seen.add(body)
            first.append(body)
    missing = set(expected) - seen
    assert not missing, f"{len(missing)} lines lost, e.g. {sorted(missing)[:3]}"
    assert first == expected, "lines arrived out of order"
    return len(bodies) - len(first)
