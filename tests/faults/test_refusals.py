"""The broker refuses: a queue declared elsewhere with other arguments, a queue deleted
under us (returned lines), a wrong password."""

import os
import signal
import time

from helpers import unique, wait_for
from integration.test_fifo import open_writer


def test_queue_with_other_arguments_waits_while_other_inputs_flow(
        broker, config, tailrabbit_factory, tmp_path):
    bad, good = unique("tr-bad"), unique("tr-good")
    broker.declare(bad, durable=True, auto_delete=False,
                   arguments={"x-max-length": 10})          # not what tailrabbit asks for
    broker.queues.append(good)
    config["input:bad"] = {"type": "fifo", "path": str(tmp_path / "bad.fifo"), "queue": bad}
    config["input:good"] = {"type": "fifo", "path": str(tmp_path / "good.fifo"),
                            "queue": good}
    config["tailrabbit"]["buffer"] = 400
    proc = tailrabbit_factory(config)
    proc.wait_for_event("input_parked", containing=f"cannot declare queue '{bad}'")
    error_line = next(line for line in proc.log().splitlines() if "cannot declare" in line)
    assert "ERROR" in error_line and "x-max-length" in error_line     # names the mismatch
    bad_fd, good_fd = open_writer(str(tmp_path / "bad.fifo")), open_writer(
        str(tmp_path / "good.fifo"))
    os.write(bad_fd, b"".join(b"bad %04d\n" % i for i in range(1000)))   # > the buffer
    os.write(good_fd, b"".join(b"good %04d\n" % i for i in range(1000)))
    broker.wait_depth(good, 1000)                    # the other input keeps flowing
    assert broker.depth(bad) == 0
    broker.channel.queue_delete(bad)                 # the operator fixes the queue
    broker.wait_depth(bad, 1000, timeout=90)         # declare retried with backoff
    os.close(bad_fd)
    os.close(good_fd)
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(bad)] == [b"bad %04d" % i for i in range(1000)]
    assert proc.process.returncode == 0


def test_a_queue_deleted_under_us_returns_lines_and_they_are_not_lost(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    path = str(tmp_path / "web.fifo")
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
    proc = tailrabbit_factory(config)
    fd = open_writer(path)
    os.write(fd, b"before\n")
    broker.wait_depth(queue_name, 1)
    broker.channel.queue_delete(queue_name)
    os.write(fd, b"".join(b"after %03d\n" % i for i in range(100)))
    proc.wait_for_event("input_parked", containing="unroutable")
    broker.wait_depth(queue_name, 100)
    os.close(fd)
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert sorted(set(bodies)) == [b"after %03d" % i for i in range(100)]
    assert "returned=" in proc.log()


def test_wrong_password_is_an_error_with_backoff_not_a_crash(config, queue_name,
                                                             tailrabbit_factory, tmp_path):
    config["rabbitmq"]["password"] = "not-the-password-xyz"
    config["input:web"] = {"type": "fifo", "path": str(tmp_path / "w.fifo"),
                           "queue": queue_name}
    proc = tailrabbit_factory(config)
    proc.wait_for_event("connect_refused", containing="ACCESS_REFUSED")
    started = time.monotonic()
    wait_for(lambda: len(proc.logged("connect_refused", "ACCESS_REFUSED")) >= 3, timeout=30,
             message="three attempts")
    assert time.monotonic() - started > 0.5          # backing off, not a tight loop
    assert proc.process.poll() is None               # still running
    assert "ERROR" in proc.log() and "not-the-password-xyz" not in proc.log()
    # The broker answered, and said no: the log must not say nobody answered.
    assert proc.logged("no_broker_accepted")
    assert not proc.logged("no_broker_answered")
    proc.signal(signal.SIGUSR1)
    proc.wait_for_event("stats", containing="connection=disconnected")
    assert proc.stop() == 0
