"""One input's route fails (exchange deleted, queue full with reject-publish, unroutable
returns, a line over the broker's max_message_size): that input is parked, the other input
keeps flowing with every line exactly once and in order, and once the route is repaired the
parked input's lines all arrive, in order, repeated at most as many as were in flight when
it was parked (the publisher logs that figure)."""

import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from faults.rabbit_node import PrivateNode
from helpers import (Broker, LineWriter, base_config, check_at_least_once, text_events,
                     unique, wait_for)
from integration.test_fifo import open_writer

GOOD_LINES, GOOD_RATE = 9000, 1000          # the healthy input: 9 s of traffic
FLOW_LINES, FLOW_WITHIN = 300, 2.0          # during the fault: 300 lines within 2 s


def two_inputs(config, tmp_path, good_queue, bad_queue, **bad_extra):
    good, bad = str(tmp_path / "good.fifo"), str(tmp_path / "bad.fifo")
    config["input:good"] = {"type": "fifo", "path": good, "queue": good_queue}
    config["input:bad"] = {"type": "fifo", "path": bad, "queue": bad_queue, **bad_extra}
    return good, bad


def bad_lines(start, end):
    return [b"bad %05d" % i for i in range(start, end)]


def write_bad(fd, start, end):
    os.write(fd, b"".join(line + b"\n" for line in bad_lines(start, end)))


def assert_flowing(broker, queue, writer):
    """The healthy input's queue grows by FLOW_LINES within FLOW_WITHIN s (while the
    writer still writes)."""
    assert writer.written < GOOD_LINES - FLOW_LINES * 2, "the fault came too late"
    before = broker.depth(queue)
    wait_for(lambda: broker.depth(queue) >= before + FLOW_LINES, timeout=FLOW_WITHIN,
             message=f"the healthy input to flow during the fault (had {before})")


def flows_throughout(broker, queue, writer, seconds):
    """The fault lasts `seconds` (long enough for a retry to meet it): the healthy input
    flows all along."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        assert_flowing(broker, queue, writer)


def bad_parked(log):
    """The messages of the input_parked events of input bad in `log`."""
    return [message for _level, event, message in text_events(log)
            if event == "input_parked" and message.startswith("input bad ")]


def parked_in_flight(log):
    """Sum of the unconfirmed lines each parking of input bad held back: the most that
    can arrive twice."""
    return sum(int(re.search(r"\((\d+) unconfirmed lines", message).group(1))
               for message in bad_parked(log))


def check_good(broker, queue, writer):
    bodies = [m.body for m in broker.consume_all(queue)]
    duplicates = check_at_least_once(bodies, writer.expected())
    assert duplicates == 0, f"{duplicates} lines of the healthy input repeated"


def check_bad(bodies, expected, log):
    duplicates = check_at_least_once(bodies, expected)
    bound = parked_in_flight(log)
    assert bad_parked(log)
    assert duplicates <= bound, f"{duplicates} repeated, at most {bound} were in flight"
    return duplicates, bound


def start_good(tmp_path, good, proc):
    os.close(open_writer(good))
    return LineWriter(good, GOOD_LINES, GOOD_RATE, prefix=b"good").start()


def test_deleted_exchange_parks_only_its_input(broker, config, tailrabbit_factory, tmp_path):
    good_q, bad_q, exchange = unique("tr-good"), unique("tr-bad"), unique("tr-ex")
    broker.queues += [good_q, bad_q]
    broker.channel.exchange_declare(exchange, "direct", durable=False, auto_delete=False)
    try:
        good, bad = two_inputs(config, tmp_path, good_q, bad_q, exchange=exchange)
        proc = tailrabbit_factory(config)
        proc.wait_for_event("connected")
        fd = open_writer(bad)
        write_bad(fd, 0, 100)
        broker.wait_depth(bad_q, 100)
        writer = start_good(tmp_path, good, proc)
        wait_for(lambda: writer.written > 1000, message="traffic")
        broker.channel.exchange_delete(exchange)
        write_bad(fd, 100, 200)
        proc.wait_for_event("input_parked", containing="input bad ")
        flows_throughout(broker, good_q, writer, 4.0)
        assert [m for m in bad_parked(proc.log())                      # retried, still gone
                if m.startswith("input bad parked: cannot declare queue")]
        broker.channel.exchange_declare(exchange, "direct", durable=False,
                                        auto_delete=False)
        write_bad(fd, 200, 300)
        os.close(fd)
        writer.join()
        broker.wait_depth(good_q, GOOD_LINES)
        broker.wait_depth(bad_q, 300, timeout=40)
        assert proc.stop() == 0, proc.log()
        check_good(broker, good_q, writer)
        duplicates, bound = check_bad([m.body for m in broker.consume_all(bad_q)],
                                      bad_lines(0, 300), proc.log())
        print(f"deleted exchange: bad input {duplicates} repeated (bound {bound})")
    finally:
        broker.channel.exchange_delete(exchange)


def rabbitmqctl(*args):
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def test_full_queue_nacks_park_only_its_input(broker, config, tailrabbit_factory, tmp_path):
    """reject-publish: the broker nacks what the full queue refuses; the repair is removing
    the policy that made it full at 50."""
    good_q, bad_q = unique("tr-good"), unique("tr-bad")
    broker.queues += [good_q, bad_q]
    policy = unique("tr-full")
    rabbitmqctl("set_policy", "--apply-to", "queues", policy, f"^{bad_q}$",
                '{"max-length": 50, "overflow": "reject-publish"}')
    try:
        good, bad = two_inputs(config, tmp_path, good_q, bad_q)
        proc = tailrabbit_factory(config)
        proc.wait_for_event("connected")
        writer = start_good(tmp_path, good, proc)
        wait_for(lambda: writer.written > 1000, message="traffic")
        fd = open_writer(bad)
        write_bad(fd, 0, 200)
        proc.wait_for_event("input_parked", containing="input bad ")
        flows_throughout(broker, good_q, writer, 3.0)
        assert len(bad_parked(proc.log())) >= 2                     # retried, still full
        assert broker.depth(bad_q) == 50
        rabbitmqctl("clear_policy", policy)
        policy = None
        write_bad(fd, 200, 300)
        os.close(fd)
        writer.join()
        broker.wait_depth(good_q, GOOD_LINES)
        broker.wait_depth(bad_q, 300, timeout=40)
        assert proc.stop() == 0, proc.log()
        check_good(broker, good_q, writer)
        duplicates, bound = check_bad([m.body for m in broker.consume_all(bad_q)],
                                      bad_lines(0, 300), proc.log())
        print(f"full queue: bad input {duplicates} repeated (bound {bound})")
    finally:
        if policy:
            rabbitmqctl("clear_policy", policy)


def test_returned_lines_park_only_their_input(broker, config, tailrabbit_factory, tmp_path):
    """The queue is unbound from the exchange: lines come back unroutable; the retry's
    declare binds it again."""
    good_q, bad_q, exchange = unique("tr-good"), unique("tr-bad"), unique("tr-ex")
    broker.queues += [good_q, bad_q]
    broker.channel.exchange_declare(exchange, "direct", durable=False, auto_delete=False)
    try:
        good, bad = two_inputs(config, tmp_path, good_q, bad_q, exchange=exchange,
                               routing_key="rk")
        proc = tailrabbit_factory(config)
        proc.wait_for_event("connected")
        writer = start_good(tmp_path, good, proc)
        wait_for(lambda: writer.written > 1000, message="traffic")
        broker.channel.queue_unbind(bad_q, exchange, "rk")
        fd = open_writer(bad)
        write_bad(fd, 0, 200)
        proc.wait_for_event("input_parked", containing="input bad ")
        assert_flowing(broker, good_q, writer)
        write_bad(fd, 200, 300)
        os.close(fd)
        writer.join()
        broker.wait_depth(good_q, GOOD_LINES)
        broker.wait_depth(bad_q, 300, timeout=40)
        assert proc.stop() == 0, proc.log()
        check_good(broker, good_q, writer)
        duplicates, bound = check_bad([m.body for m in broker.consume_all(bad_q)],
                                      bad_lines(0, 300), proc.log())
        print(f"returns: bad input {duplicates} repeated (bound {bound})")
    finally:
        broker.channel.exchange_delete(exchange)


@pytest.fixture
def small_node():
    """A private node whose max_message_size is 4 KiB (the shared one is never touched)."""
    if not shutil.which("rabbitmq-server"):
        pytest.skip("rabbitmq-server is not installed")
    base = tempfile.mkdtemp(prefix="tr-node-")
    node = PrivateNode(base)
    with open(os.path.join(node.base_dir, "rabbitmq.conf"), "a") as handle:
        handle.write("max_message_size = 4096\n")
    try:
        node.start()
        yield node
    finally:
        node.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def test_line_over_max_message_size_parks_only_its_input(small_node, state_dir,
                                                        tailrabbit_factory, tmp_path):
    broker = Broker(small_node.address)
    config = base_config(state_dir, broker=small_node.address, shutdown_timeout=2)
    good_q, bad_q = unique("tr-good"), unique("tr-bad")
    good, bad = two_inputs(config, tmp_path, good_q, bad_q)
    proc = tailrabbit_factory(config)
    proc.wait_for_event("connected")
    writer = start_good(tmp_path, good, proc)
    wait_for(lambda: writer.written > 1000, message="traffic")
    fd = open_writer(bad)
    os.write(fd, b"small 1\n" + b"x" * 5000 + b"\nsmall 2\n")
    proc.wait_for_event("input_parked", containing="input bad ")
    assert_flowing(broker, good_q, writer)
    writer.join()
    broker.wait_depth(good_q, GOOD_LINES)
    log = proc.log()
    assert [m for m in bad_parked(log) if "larger than configured max size" in m], log
    assert proc.stop() == 0, proc.log()
    check_good(broker, good_q, writer)
    # Nothing after the large line went out; each retry may store the line before it
    # again (it shares the batch); what waits is spooled at the stop.
    bodies = [m.body for m in broker.consume_all(bad_q)]
    assert set(bodies) <= {b"small 1"}
    assert len(bodies) <= len(bad_parked(proc.log()))
    assert proc.logged("unconfirmed_spooled"), proc.log()
    broker.connection.close()
