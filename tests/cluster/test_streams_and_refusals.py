"""Scenario 6: a stream queue (x-queue-type = stream, over AMQP 0-9-1) gets every line in
order (read back from offset "first"). Scenario 7: configs the broker can never accept
are refused at start, exit 78 with one line naming file, section, key and problem."""

import os

import pytest

from helpers import run_cli, unique, write_config
from integration.test_fifo import open_writer
from cluster.traffic import Consumer, report


def test_a_stream_queue_gets_every_line_in_order(cluster, cluster_config,
                                                 tailrabbit_factory, tmp_path):
    queue = unique("tr-stream")
    path = str(tmp_path / "web.fifo")
    cluster_config["input:web"] = {"type": "fifo", "path": path, "queue": queue,
                                   "arguments": '{"x-queue-type": "stream"}'}
    proc = tailrabbit_factory(cluster_config)
    proc.wait_for_event("connected")
    fd = open_writer(path)
    expected = [b"stream %05d" % i for i in range(5000)]
    os.write(fd, b"".join(line + b"\n" for line in expected))
    os.close(fd)
    consumer = Consumer(cluster.nodes[1].address, queue, stream_offset="first").start()
    consumer.wait_count(len(expected))
    assert proc.stop() == 0, proc.log()
    consumer.stop()
    assert report("stream", consumer.bodies(), expected) == 0
    assert consumer.bodies() == expected


LONG = "q" * 256


@pytest.mark.parametrize("keys, section, key, problem", [
    ({"arguments": '{"x-queue-type": "quorum"}', "durable": "False"}, "input:web",
     "durable", "quorum"),
    ({"arguments": '{"x-queue-type": "stream"}', "durable": "no"}, "input:web",
     "durable", "stream"),
    ({"arguments": '{"x-queue-type": "quorum"}', "auto_delete": "True"}, "input:web",
     "auto_delete", "quorum"),
    ({"arguments": '{"x-queue-type": "stream"}', "auto_delete": "yes"}, "input:web",
     "auto_delete", "stream"),
    ({"queue": LONG}, "input:web", "queue", "255"),
    ({"exchange": LONG}, "input:web", "exchange", "255"),
    ({"routing_key": LONG}, "input:web", "routing_key", "255"),
])
def test_configs_the_broker_can_never_accept_are_refused_at_start(
        tmp_path, keys, section, key, problem):
    config = {"tailrabbit": {"state_dir": str(tmp_path)},
              "rabbitmq": {"host": "127.0.0.1:1, 127.0.0.1:2", "host_order": "shuffle"},
              "input:web": {"type": "stdin", **keys}}
    path = str(write_config(tmp_path / "bad.ini", config))
    for args in (("-c", path), ("--check", "-c", path)):
        result = run_cli(*args, timeout=30)
        lines = result.stderr.decode().strip().splitlines()
        assert result.returncode == 78 and len(lines) == 1, result.stderr
        assert path in lines[0] and f"[{section}] {key}" in lines[0] \
            and problem in lines[0], lines[0]
