"""What a stop, a crash or a reload holds is never lost (issue 8, items 1, 2, 7, 11, 12).

Every scenario keeps the broker away through the fault proxy while lines are read, so the
lines are in memory (a buffer, a blocked `put`, a splitter's unterminated tail) when the
process stops; then a second run with the broker back must deliver every one, in order.
"""

import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from helpers import REPO, Tailrabbit, wait_for, write_config
from integration.test_fifo import open_writer


def stats_of(proc, name):
    """The counters of input `name` from a fresh stats line (SIGUSR1)."""
    return proc.stats(name)


def lines(prefix, count, width=100):
    return [b"%s %05d %s" % (prefix, i, b"x" * width) for i in range(count)]


def deliver_and_compare(broker, queue, config, tailrabbit_factory, expected,
                        finishes=False):
    """Start again with the broker back; every line arrives, in order. `finishes`: only
    stdin inputs, at EOF: the process exits 0 by itself once every line is confirmed."""
    second = tailrabbit_factory(config, name="second")
    broker.wait_depth(queue, len(expected), timeout=60)
    assert (second.wait(60) if finishes else second.stop()) == 0, second.log()
    assert [m.body for m in broker.consume_all(queue)] == expected


@pytest.mark.parametrize("kind", ["stdin", "fifo"])
def test_sigterm_spools_the_batch_an_input_is_blocked_on_and_its_partial_line(
        kind, broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    """A `block` input waiting for room holds a read batch that is in no buffer, spool or
    tracker; and its splitter holds an unterminated line. Both go to the spool."""
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    proxied_config["tailrabbit"]["buffer"] = 5
    path = str(tmp_path / "in.fifo")
    proxied_config["input:in"] = ({"type": "stdin", "queue": queue_name} if kind == "stdin"
                                  else {"type": "fifo", "path": path, "queue": queue_name,
                                        "overflow": "block"})
    expected = lines(b"blocked", 1000)
    data = b"".join(line + b"\n" for line in expected) + b"no newline yet"
    if kind == "stdin":
        first = tailrabbit_factory(proxied_config, name="first", stdin=subprocess.PIPE)
        stream = first.process.stdin
        writer = threading.Thread(target=lambda: (stream.write(data), stream.flush()),
                                  daemon=True)
    else:
        first = tailrabbit_factory(proxied_config, name="first")
        fd = open_writer(path)
        writer = threading.Thread(target=os.write, args=(fd, data), daemon=True)
    writer.start()
    wait_for(lambda: stats_of(first, "in")["read"] == 1000, message="every line read")
    assert first.stop() == 0, first.log()
    proxy.set_mode("pass")
    if kind == "stdin":         # stdin ends with its process: its last line is whole
        expected.append(b"no newline yet")
        assert stats_of_log(first, "in")["spooled"] == len(expected), first.log()
        proxied_config["input:in"] = {"type": "stdin", "queue": queue_name}
        deliver_and_compare(broker, queue_name, proxied_config, tailrabbit_factory,
                            expected, finishes=True)
        return
    # The FIFO's writer still holds it, mid-line: the line is kept, not spooled as one,
    # and the next run finishes it with what the writer writes next.
    assert stats_of_log(first, "in")["spooled"] == len(expected), first.log()
    assert first.logged("unfinished_line_kept", "kept 14 bytes"), first.log()
    second = tailrabbit_factory(proxied_config, name="second")
    second.wait_for_event("unfinished_line_resumed", containing="its writer goes on")
    os.write(fd, b", now it has one\n")
    os.close(fd)
    expected.append(b"no newline yet, now it has one")
    broker.wait_depth(queue_name, len(expected), timeout=60)
    assert second.stop() == 0, second.log()
    assert [m.body for m in broker.consume_all(queue_name)] == expected


def stats_of_log(proc, name):
    """The counters of the last stats line `proc` logged (it has exited)."""
    line = [row for row in proc.log().splitlines() if f"stats input={name} " in row][-1]
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}


CRASH_ON_SIGNAL = """
import sys
from tailrabbit import cli
from tailrabbit.inputs.fifo import FifoInput

original = FifoInput.run

def run(self):
    if self.name != "boom":
        return original(self)
    import gevent
    from gevent.event import Event
    trigger = Event()
    gevent.signal_handler(__import__("signal").SIGUSR2, trigger.set)
    trigger.wait()
    raise RuntimeError("injected crash")
FifoInput.run = run
sys.exit(cli.main(["-c", sys.argv[1]]))
"""


class CrashableTailrabbit(Tailrabbit):
    """tailrabbit whose input `boom` raises RuntimeError on SIGUSR2: an unexpected crash."""

    def __init__(self, config_path, log_path):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", CRASH_ON_SIGNAL, config_path],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, cwd=REPO)


def test_a_crash_spools_every_input_on_its_own_then_exits_1(
        broker, proxied_config, proxy, tailrabbit_factory, tmp_path, queue_name):
    """Buffered and blocked lines of every FIFO/stdin input are spooled on a crash; a spool
    that cannot be written does not stop the next input's from being written."""
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    other = queue_name + "-b"
    broker.declare(other, durable=True, auto_delete=False)
    proxied_config["tailrabbit"]["buffer"] = 50
    config = dict(proxied_config)
    paths = {name: str(tmp_path / f"{name}.fifo") for name in ("a", "b", "boom")}
    # "a" sorts first and its spool cannot be created (a file where its directory goes).
    config["input:a"] = {"type": "fifo", "path": paths["a"], "queue": other + "-a"}
    config["input:b"] = {"type": "fifo", "path": paths["b"], "queue": queue_name}
    config["input:boom"] = {"type": "fifo", "path": paths["boom"], "queue": other}
    state = config["tailrabbit"]["state_dir"]
    os.makedirs(os.path.join(state, "spool"), exist_ok=True)
    with open(os.path.join(state, "spool", "a"), "w"):
        pass
    path = write_config(tmp_path / "crash.ini", config)
    crashing = CrashableTailrabbit(str(path), str(tmp_path / "crash.log"))
    try:
        expected = lines(b"b", 30)
        for name in ("a", "b"):
            fd = open_writer(paths[name])
            os.write(fd, b"".join(line + b"\n" for line in lines(name.encode(), 30)))
            os.close(fd)
        wait_for(lambda: stats_of(crashing, "b")["read"] == 30
                 and stats_of(crashing, "a")["read"] == 30, message="lines read")
        crashing.signal(signal.SIGUSR2)
        assert crashing.wait(30) == 1, crashing.log()
    finally:
        crashing.kill()
    log = crashing.log()
    assert crashing.logged("crashed", "injected crash"), log
    assert crashing.logged("unconfirmed_lost", "input a: 30 lines "), log
    assert crashing.logged("unconfirmed_spooled", "input b: 30 lines "), log
    proxy.set_mode("pass")
    del config["input:boom"], config["input:a"]
    deliver_and_compare(broker, queue_name, config, tailrabbit_factory, expected)


def test_a_block_input_waits_behind_an_earlier_spool_instead_of_dropping(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    """Run 1 (a FIFO) spools at its stop; run 2 reads stdin (block) under the same name
    with a small spool bound: stdin waits behind the replay, nothing is dropped."""
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    path = str(tmp_path / "bulk.fifo")
    proxied_config["tailrabbit"]["buffer"] = 20
    proxied_config["input:bulk"] = {"type": "fifo", "path": path, "queue": queue_name}
    first = tailrabbit_factory(proxied_config, name="first")
    spooled = lines(b"first", 200, width=20)
    fd = open_writer(path)
    for start in range(0, 200, 20):            # ten reads: ten batches in the spool
        os.write(fd, b"".join(line + b"\n" for line in spooled[start:start + 20]))
        wait_for(lambda: stats_of(first, "bulk")["read"] == start + 20, message="a read")
    os.close(fd)
    assert first.stop() == 0, first.log()

    proxied_config["tailrabbit"]["spool_max_bytes"] = 10000   # about the spool's own size
    proxied_config["input:bulk"] = {"type": "stdin", "queue": queue_name}
    bulk = lines(b"bulk", 1000, width=20)
    second = tailrabbit_factory(proxied_config, name="second", stdin=subprocess.PIPE)
    second.process.stdin.write(b"".join(line + b"\n" for line in bulk))
    second.process.stdin.close()
    wait_for(lambda: stats_of(second, "bulk")["read"] > 0, message="stdin read")
    proxy.set_mode("pass")
    assert second.wait(60) == 0, second.log()
    counters = stats_of_log(second, "bulk")
    assert counters["dropped"] == 0, second.log()
    assert [m.body for m in broker.consume_all(queue_name)] == spooled + bulk


def test_a_reload_that_restarts_a_file_input_repeats_nothing(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    """Changing how a file input reads restarts it from its checkpoint; the lines it had
    buffered are read again, so they must not also be published from the buffer."""
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    log_path = tmp_path / "api.log"
    expected = lines(b"api", 100, width=10)
    log_path.write_bytes(b"".join(line + b"\n" for line in expected))
    proxied_config["input:api"] = {"type": "file", "path": str(log_path),
                                   "queue": queue_name, "start_at": "beginning"}
    proc = tailrabbit_factory(proxied_config, name="reload")
    wait_for(lambda: stats_of(proc, "api")["read"] == 100, message="lines read")
    proxied_config["input:api"]["max_line_bytes"] = 4096
    write_config(tmp_path / "reload.ini", proxied_config)
    proc.signal(signal.SIGHUP)
    proc.wait_for_event("reloaded")
    proxy.set_mode("pass")
    broker.wait_depth(queue_name, 100)
    wait_for(lambda: stats_of(proc, "api")["confirmed"] >= 100, message="confirms")
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == expected


def test_signals_before_the_daemon_runs_are_handled_not_fatal(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """SIGHUP and SIGUSR1 while the config is still loading (here: a password_file that is
    a FIFO nobody wrote yet) are handled once the daemon runs, not the default 'terminate'."""
    secret = tmp_path / "password.fifo"
    os.mkfifo(secret, 0o600)
    config["rabbitmq"]["password_file"] = str(secret)
    config["input:web"] = {"type": "fifo", "path": str(tmp_path / "web.fifo"),
                           "queue": queue_name}
    proc = tailrabbit_factory(config, name="early")
    # A writer can open the FIFO only once tailrabbit is blocked reading it, in config load.
    fd = wait_for(lambda: _open_for_writing(secret), message="tailrabbit reading the password")
    proc.signal(signal.SIGHUP)
    proc.signal(signal.SIGUSR1)
    os.write(fd, b"guest\n")
    os.close(fd)
    proc.wait_for_event("started")
    fd = wait_for(lambda: _open_for_writing(secret), message="the reload reading it again")
    os.write(fd, b"guest\n")                    # the reload the early SIGHUP asked for
    os.close(fd)
    proc.wait_for_event("reloaded")
    wait_for(lambda: proc.logged("stats", "input=web "), message="the early SIGUSR1's stats")
    assert proc.stop() == 0, proc.log()


def _open_for_writing(path):
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return None


def test_a_stop_with_a_hung_broker_ends_within_its_bound_and_spools_everything(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    """The broker hangs mid-traffic (connection open, nothing passes): SIGTERM still ends
    within shutdown_timeout + 4 s (two kill timeouts of 2 s: readers, publisher), below
    the shipped TimeoutStopSec / stopwaitsecs, and every line read is spooled."""
    import time
    broker.declare(queue_name, durable=True, auto_delete=False)
    path = str(tmp_path / "web.fifo")
    proxied_config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
    proxied_config["rabbitmq"]["heartbeat"] = 30      # the hang is not noticed in time
    first = tailrabbit_factory(proxied_config, name="first")
    fd = open_writer(path)
    expected = lines(b"hung", 3000)
    os.write(fd, b"".join(line + b"\n" for line in expected[:1000]))
    broker.wait_depth(queue_name, 1000)
    proxy.set_mode("stall")
    os.write(fd, b"".join(line + b"\n" for line in expected[1000:]))
    os.close(fd)
    wait_for(lambda: stats_of(first, "web")["read"] == 3000, message="every line read")
    started = time.monotonic()
    assert first.stop() == 0, first.log()
    took = time.monotonic() - started
    assert took < 3 + 4, f"the stop took {took:.1f} s"
    proxy.cut()
    proxy.set_mode("pass")
    second = tailrabbit_factory(proxied_config, name="second")
    wait_for(lambda: broker.depth(queue_name) >= 3000, timeout=60, message="every line")
    assert second.stop() == 0, second.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    # Lines the broker took before the hang but never confirmed are published again.
    assert set(bodies) == set(expected)
    print(f"stop with a hung broker took {took:.1f} s; {len(bodies) - 3000} duplicates")


def test_an_input_removed_by_sighup_while_its_spool_replays_delivers_it_all(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    """Its route stays while its spool holds lines; nothing crashes, nothing is lost."""
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    path = str(tmp_path / "gone.fifo")
    proxied_config["tailrabbit"]["buffer"] = 100
    proxied_config["input:gone"] = {"type": "fifo", "path": path, "queue": queue_name}
    proc = tailrabbit_factory(proxied_config, name="reload")
    expected = lines(b"gone", 5000, width=20)
    fd = open_writer(path)
    os.write(fd, b"".join(line + b"\n" for line in expected))
    os.close(fd)
    wait_for(lambda: stats_of(proc, "gone")["read"] == 5000, message="lines read")
    assert stats_of(proc, "gone")["spooled"] > 0
    del proxied_config["input:gone"]
    proxied_config["input:other"] = {"type": "fifo", "path": str(tmp_path / "o.fifo"),
                                     "queue": queue_name + "-other"}
    broker.queues.append(queue_name + "-other")
    write_config(tmp_path / "reload.ini", proxied_config)
    proc.signal(signal.SIGHUP)
    proc.wait_for_event("reloaded")
    proxy.set_mode("pass")
    broker.wait_depth(queue_name, len(expected), timeout=60)
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == expected


def test_a_spool_of_an_input_no_longer_configured_is_reported_at_start(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    proxy.set_mode("refuse")
    path = str(tmp_path / "old.fifo")
    proxied_config["input:old"] = {"type": "fifo", "path": path, "queue": queue_name}
    first = tailrabbit_factory(proxied_config, name="first")
    fd = open_writer(path)
    os.write(fd, b"kept 1\nkept 2\n")
    os.close(fd)
    wait_for(lambda: stats_of(first, "old")["read"] == 2, message="lines read")
    assert first.stop() == 0, first.log()
    del proxied_config["input:old"]
    proxied_config["input:new"] = {"type": "fifo", "path": str(tmp_path / "new.fifo"),
                                   "queue": queue_name}
    second = tailrabbit_factory(proxied_config, name="second")
    second.wait_for_event("spool_orphaned", containing="by input old,")
    assert second.stop() == 0, second.log()
