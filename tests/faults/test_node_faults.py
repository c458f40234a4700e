"""Faults of a broker node the tests own: stop_app/start_app, kill -9 and restart, a
memory alarm (connection.blocked). The shared broker on 5672 is never touched."""

import os
import shutil
import tempfile
import time

import pytest

from faults.rabbit_node import PrivateNode
from helpers import Broker, LineWriter, base_config, check_at_least_once, wait_for
from integration.test_fifo import open_writer

# one xdist worker runs this module: its broker node (module scope) starts once
pytestmark = [pytest.mark.skipif(not shutil.which("rabbitmq-server"),
                                 reason="rabbitmq-server is not installed"),
              pytest.mark.xdist_group("node_faults")]


@pytest.fixture(scope="module")
def node():
    base = tempfile.mkdtemp(prefix="tr-node-")
    private = PrivateNode(base)
    try:
        private.start()
        yield private
    finally:
        private.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def node_broker(node):
    if not _answers(node):
        node.start()
    client = Broker(node.address)
    yield client
    try:
        client.close()
    except Exception:
        pass


def _answers(node):
    import socket
    try:
        socket.create_connection(("127.0.0.1", node.port), timeout=1).close()
        return True
    except OSError:
        return False


def fifo_setup(node, state_dir, queue, path):
    config = base_config(state_dir, broker=node.address)
    config["rabbitmq"]["heartbeat"] = 5
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue}
    return config


def outage_under_traffic(node, queue, state_dir, factory, tmp_path, fail, recover, what):
    """Traffic into a FIFO, `fail()` the node mid-way, `recover()` it: every line arrives."""
    path = str(tmp_path / "web.fifo")
    proc = factory(fifo_setup(node, state_dir, queue, path))
    # The queue's declaration on disk before the crash: else a kill -9 can lose the queue
    # with the lines it confirmed, which no shipper can repeat (PrivateNode.sync_metadata)
    proc.wait_for_event("connected", timeout=30)
    node.sync_metadata()
    os.close(open_writer(path))
    writer = LineWriter(path, 20000, 5000).start()
    wait_for(lambda: writer.written > 6000, message="traffic")
    fail()
    proc.wait_for_event("connection_lost", timeout=30)
    writer.join()
    back = time.monotonic()
    recover()
    broker = Broker(node.address)
    broker.queues.append(queue)
    try:
        try:
            broker.wait_depth(queue, writer.count, timeout=120)
        except AssertionError as error:        # once in CI: say what tailrabbit did
            raise AssertionError(f"{error}\n{proc.diagnose()}\n--- the node ---\n"
                                 f"{node.describe()}") from None
        took = time.monotonic() - back
        assert proc.stop() == 0, proc.log()
        duplicates = check_at_least_once([m.body for m in broker.consume_all(queue)],
                                         writer.expected())
    finally:
        broker.close()
    print(f"{what}: all lines {took:.1f} s after the broker came back, "
          f"{duplicates} duplicates")


def test_stop_app_and_start_app_under_traffic(node, node_broker, queue_name, state_dir,
                                              tailrabbit_factory, tmp_path):
    outage_under_traffic(node, queue_name, state_dir, tailrabbit_factory, tmp_path,
                         node.stop_app, node.start_app, "stop_app/start_app")


def test_broker_kill_9_and_restart_with_durable_persistent_messages(
        node, node_broker, queue_name, state_dir, tailrabbit_factory, tmp_path):
    outage_under_traffic(node, queue_name, state_dir, tailrabbit_factory, tmp_path,
                         node.kill, node.start, "kill -9 + restart")


def test_memory_alarm_blocks_then_everything_arrives(node, node_broker, queue_name,
                                                     state_dir, tailrabbit_factory,
                                                     tmp_path):
    node_broker.queues.append(queue_name)
    path = str(tmp_path / "web.fifo")
    proc = tailrabbit_factory(fifo_setup(node, state_dir, queue_name, path))
    proc.wait_for_event("connected")
    node.set_memory_watermark(0.00001)
    try:
        fd = open_writer(path)
        expected = [b"alarm %05d" % i for i in range(20000)]
        os.write(fd, b"".join(line + b"\n" for line in expected))
        os.close(fd)
        proc.wait_for_event("connection_blocked", timeout=30)
        time.sleep(3)                 # stay blocked a while (py-amqp's 1 s TCP trap)
    finally:
        node.set_memory_watermark(0.4)
    proc.wait_for_event("connection_unblocked", timeout=30)
    node_broker.wait_depth(queue_name, len(expected), timeout=60)
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in node_broker.consume_all(queue_name)] == expected
