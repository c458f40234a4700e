"""Broker faults seen through a TCP proxy: cut, refused, stalled; graceful stop with the
broker down and replay of the spool; a FIFO writer never blocked by a down broker."""

import os
import re
import signal
import threading
import time

from cluster.traffic import LOG_FORMAT, log_events
from helpers import LineWriter, check_at_least_once, wait_for
from integration.test_fifo import open_writer

HEARTBEAT = 2.0          # proxied_config's
# tailrabbit/session.py: no frame for 2 heartbeat intervals + 1 s means a dead peer
HEARTBEAT_LIMIT = 2 * HEARTBEAT + 1
# tailrabbit/publisher/loop.py: reconnect backoff, first delay and cap; each delay is the
# current step times a jitter in [0.5, 1] (parking.Backoff), the step doubling up to the cap
BACKOFF_FIRST, BACKOFF_CAP = 0.5, 30.0
# time to notice the broker is back once the backoff delay ends (connect, declare, open
# channels, log), on two loaded cores; and the proxy's own lag entering "stall" (its
# pumps look at the mode every 0.2 s) plus this test's log polling
CONNECT_MARGIN = 1.5
STALL_MARGIN = 1.0


def fifo_input(config, queue, path, **extra):
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue, **extra}
    config["logging"] = {"log_format": LOG_FORMAT}      # timestamps to the millisecond
    return config


def first_event(proc, name, after=0.0, containing=""):
    """The time of the first event `name` (whose message contains `containing`) logged at
    or after `after`."""
    return next((at for at, _level, event, message in log_events(proc)
                 if at >= after and event == name and containing in message), None)


def check_backoff(proc, back):
    """The retries while the broker refused follow the documented backoff, and once it is
    back (`back`, epoch seconds) tailrabbit connects when the delay then running ends.
    Returns (seconds from `back` to connected, that delay)."""
    retries = [(at, float(re.search(r"retrying in ([\d.]+) s", message).group(1)))
               for at, _level, event, message in log_events(proc)
               if event == "no_broker_answered"]
    assert retries, proc.log()
    for step, (_at, delay) in enumerate(retries):
        ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** step)
        assert ceiling / 2 - 0.05 <= delay <= ceiling + 0.05, (step, delay, retries)
    connected = first_event(proc, "connected", after=retries[-1][0])
    assert connected is not None, proc.log()
    announced, delay = retries[-1]              # the last sleep before the connection
    assert announced <= back + CONNECT_MARGIN, "refused after the broker was back"
    assert connected - (announced + delay) <= CONNECT_MARGIN, (
        f"connected {connected - announced - delay:.2f} s after its backoff ended")
    return connected - back, delay


def recovery(broker, queue, count, since):
    broker.wait_depth(queue, count, timeout=60)
    return time.monotonic() - since


def test_cut_during_traffic(broker, proxied_config, proxy, queue_name, tailrabbit_factory,
                            tmp_path):
    path = str(tmp_path / "web.fifo")
    proc = tailrabbit_factory(fifo_input(proxied_config, queue_name, path))
    os.close(open_writer(path))
    writer = LineWriter(path, 30000, 10000).start()
    wait_for(lambda: writer.written > 10000, message="traffic")
    proxy.cut()
    writer.join()
    proc.wait_for_event("connection_lost")
    broker.wait_depth(queue_name, writer.count, timeout=60)
    assert proc.stop() == 0, proc.log()
    duplicates = check_at_least_once([m.body for m in broker.consume_all(queue_name)],
                                     writer.expected())
    print(f"cut: {duplicates} duplicates")


def test_refused_for_ten_seconds(broker, proxied_config, proxy, queue_name,
                                 tailrabbit_factory, tmp_path):
    proxy.set_mode("refuse")
    path = str(tmp_path / "web.fifo")
    broker.declare(queue_name, durable=True, auto_delete=False)
    outage = time.monotonic()
    proc = tailrabbit_factory(fifo_input(proxied_config, queue_name, path))
    os.close(open_writer(path))
    writer = LineWriter(path, 20000, 4000).start()     # the broker is down at start
    proc.wait_for_event("no_broker_answered")
    wait_for(lambda: proxy.connections >= 3, timeout=30, message="retries")
    writer.join()
    time.sleep(max(0.0, outage + 10 - time.monotonic()))   # the outage lasts 10 s
    assert broker.depth(queue_name) == 0
    back, back_epoch = time.monotonic(), time.time()
    proxy.set_mode("pass")
    took = recovery(broker, queue_name, writer.count, back)
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == writer.expected()
    reconnected, delay = check_backoff(proc, back_epoch)
    print(f"refused 10 s: connected {reconnected:.1f} s after the broker came back (the "
          f"backoff delay then running: {delay:.1f} s), all {writer.count} lines in the "
          f"queue after {took:.1f} s, {proxy.connections} connection attempts")


def test_stall_is_noticed_by_heartbeats(broker, proxied_config, proxy, queue_name,
                                        tailrabbit_factory, tmp_path):
    path = str(tmp_path / "web.fifo")
    proc = tailrabbit_factory(fifo_input(proxied_config, queue_name, path))
    os.close(open_writer(path))
    writer = LineWriter(path, 20000, 5000).start()
    wait_for(lambda: writer.written > 5000, message="traffic")
    proxy.set_mode("stall")
    stalled = time.time()
    # polled finely: the first reconnect comes a backoff delay (0.25-0.5 s) after the
    # loss, and must find the proxy passing again
    wait_for(lambda: proc.logged("connection_lost", "heartbeat missed"), timeout=30,
             interval=0.01, message="the missed heartbeat")
    proxy.cut()
    proxy.set_mode("pass")
    writer.join()
    broker.wait_depth(queue_name, writer.count, timeout=60)
    assert proc.stop() == 0, proc.log()
    duplicates = check_at_least_once([m.body for m in broker.consume_all(queue_name)],
                                     writer.expected())
    lost = first_event(proc, "connection_lost", containing="heartbeat missed")
    connected = first_event(proc, "connected", after=lost)
    noticed, reconnected = lost - stalled, connected - lost
    print(f"stall noticed after {noticed:.2f} s (heartbeat {HEARTBEAT:.0f} s), connected "
          f"again {reconnected:.2f} s later; {duplicates} duplicates")
    # acks flowed until the stall: the verdict comes one limit after it, never sooner
    # than a heartbeat interval (a busy broker is not a dead one), never later than the
    # limit plus the proxy's lag
    assert HEARTBEAT <= noticed <= HEARTBEAT_LIMIT + STALL_MARGIN
    # a connection lost after less than 10 s backs off BACKOFF_FIRST * [0.5, 1] first
    assert reconnected <= BACKOFF_FIRST + CONNECT_MARGIN


def test_sigterm_with_the_broker_down_spools_and_the_next_start_replays(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    path = str(tmp_path / "web.fifo")
    config = fifo_input(proxied_config, queue_name, path)
    first = tailrabbit_factory(config, name="first")
    fd = open_writer(path)
    os.write(fd, b"".join(b"first %05d\n" % i for i in range(5000)))
    os.close(fd)
    wait_for(lambda: "read=5000" in _stats(first), message="lines read")
    started = time.monotonic()
    assert first.stop() == 0, first.log()
    assert time.monotonic() - started < 3 + 5          # shutdown_timeout = 3
    assert first.logged("unconfirmed_spooled", ": 5000 lines"), first.log()
    proxy.set_mode("pass")
    second = tailrabbit_factory(config, name="second")
    fd = open_writer(path)
    os.write(fd, b"".join(b"second %05d\n" % i for i in range(1000)))
    os.close(fd)
    broker.wait_depth(queue_name, 6000)
    assert second.stop() == 0, second.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == ([b"first %05d" % i for i in range(5000)]
                      + [b"second %05d" % i for i in range(1000)])


def _stats(proc):
    import signal
    proc.signal(signal.SIGUSR1)
    return proc.log()


def test_fifo_writer_never_blocks_while_the_broker_is_down(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    proxied_config["tailrabbit"]["buffer"] = 1000
    path = str(tmp_path / "web.fifo")
    proc = tailrabbit_factory(fifo_input(proxied_config, queue_name, path))
    fd = open_writer(path)
    expected = [b"req %06d %s" % (i, b"z" * 150) for i in range(50000)]
    done = threading.Event()

    def write():
        os.write(fd, b"".join(line + b"\n" for line in expected))   # ~8 MB, 125x the pipe
        done.set()
    threading.Thread(target=write, daemon=True).start()
    assert done.wait(30), "the FIFO writer blocked while the broker was down"
    os.close(fd)
    wait_for(lambda: "spooled=" in _stats(proc) and "read=50000" in proc.log(),
             message="all lines read")
    assert broker.depth(queue_name) == 0
    back, back_epoch = time.monotonic(), time.time()
    proxy.set_mode("pass")
    took = recovery(broker, queue_name, len(expected), back)
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == expected
    reconnected, delay = check_backoff(proc, back_epoch)
    print(f"50k lines through a 1000-line buffer with the broker down: connected "
          f"{reconnected:.1f} s after it came back (backoff delay {delay:.1f} s), in the "
          f"queue after {took:.1f} s")


def test_overflow_drop_counts_exactly_what_it_drops_and_never_blocks_the_writer(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    """overflow = drop with the broker away: the buffer fills, the rest is dropped and
    counted (read = delivered + dropped, exactly), the writer never waits, and what was
    buffered arrives in order once the broker is back."""
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    proxied_config["tailrabbit"]["buffer"] = 1000
    path = str(tmp_path / "web.fifo")
    proc = tailrabbit_factory(fifo_input(proxied_config, queue_name, path,
                                         overflow="drop"))
    fd = open_writer(path)
    expected = [b"drop %06d %s" % (i, b"y" * 100) for i in range(20000)]
    done = threading.Event()

    def write():
        for start in range(0, len(expected), 500):
            os.write(fd, b"".join(line + b"\n" for line in expected[start:start + 500]))
        done.set()
    threading.Thread(target=write, daemon=True).start()
    assert done.wait(30), "the FIFO writer blocked with overflow = drop"
    os.close(fd)
    wait_for(lambda: "read=20000" in _stats(proc), message="every line read")
    proc.wait_for_event("lines_dropped")
    proxy.set_mode("pass")
    wait_for(lambda: "buffered=0" in _stats(proc).splitlines()[-1], timeout=30,
             message="the buffer published")
    assert proc.stop() == 0, proc.log()
    counters = dict(pair.split("=") for pair in proc.log().splitlines()[-2].split()
                    if "=" in pair)
    bodies = [m.body for m in broker.consume_all(queue_name)]
    dropped = int(counters["dropped"])
    assert len(bodies) + dropped == len(expected), counters
    assert 0 < dropped < len(expected)
    assert len(bodies) >= 1000                        # the buffer's bound was kept
    arrived = set(bodies)
    assert bodies == [line for line in expected if line in arrived]   # in order, no repeats
    assert bodies[:1000] == expected[:1000]           # the first lines were kept
    assert len(proc.logged("lines_dropped")) <= 2                      # rate-limited


def test_stats_never_say_connected_while_the_connection_is_lost(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    path = str(tmp_path / "web.fifo")
    proc = tailrabbit_factory(fifo_input(proxied_config, queue_name, path))
    proc.wait_for_event("connected")
    proxy.set_mode("refuse")
    proxy.cut()
    proc.wait_for_event("connection_lost")
    for count in range(1, 4):
        proc.signal(signal.SIGUSR1)
        wait_for(lambda: proc.log().count("stats input=web") >= count, message="stats")
    states = [line.split("connection=")[1] for line in proc.log().splitlines()
              if "stats input=web" in line]
    assert not [state for state in states if state.startswith("connected")], states
    assert proc.stop() == 0, proc.log()
