"""Each input to its own queue with its own flags; exchange and routing key; two inputs;
a reload reconnects only when a route changes."""

import json
import os
import signal
import subprocess

from helpers import LineWriter, unique, wait_for, write_config
from integration.test_fifo import open_writer


def queue_flags(name):
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name", "durable",
                          "auto_delete", "arguments", "--formatter", "json"],
                         capture_output=True, text=True, check=True).stdout
    for row in json.loads(out):
        if row["name"] == name:
            return row
    return None


def test_inputs_route_to_their_queues_with_their_flags(broker, config, tailrabbit_factory,
                                                       tmp_path):
    durable_q, transient_q = unique("tr-dur"), unique("tr-tmp")
    broker.queues += [durable_q, transient_q]
    fifo = str(tmp_path / "a.fifo")
    log = tmp_path / "b.log"
    log.write_bytes(b"")
    config["input:a"] = {"type": "fifo", "path": fifo, "queue": durable_q,
                         "arguments": '{"x-max-length": 100000}'}
    config["input:b"] = {"type": "file", "path": str(log), "queue": transient_q,
                         "durable": "no", "auto_delete": "yes", "delivery_mode": 1}
    proc = tailrabbit_factory(config)
    proc.wait_for_event("connected")
    assert queue_flags(durable_q) == {"name": durable_q, "durable": True,
                                      "auto_delete": False,
                                      "arguments": [["x-max-length", "signedint", 100000]]}
    assert queue_flags(transient_q)["durable"] is False
    assert queue_flags(transient_q)["auto_delete"] is True
    with open(fifo, "wb") as pipe:
        pipe.write(b"to a\n")
    with open(log, "ab") as handle:
        handle.write(b"to b\n")
    broker.wait_depth(durable_q, 1)
    broker.wait_depth(transient_q, 1)
    [a] = broker.consume_all(durable_q)
    [b] = broker.consume_all(transient_q)
    assert (a.body, a.properties["delivery_mode"]) == (b"to a", 2)
    assert (b.body, b.properties["delivery_mode"]) == (b"to b", 1)
    assert a.properties["application_headers"]["input"] == "a"
    assert b.properties["application_headers"]["input"] == "b"
    assert proc.stop() == 0


def test_exchange_and_routing_key(broker, config, queue_name, tailrabbit_factory, tmp_path):
    exchange = unique("tr-ex")
    broker.channel.exchange_declare(exchange, "direct", durable=False, auto_delete=False)
    try:
        config["input:in"] = {"type": "stdin", "queue": queue_name, "exchange": exchange,
                              "routing_key": "api.access"}
        proc = tailrabbit_factory(config, stdin=subprocess.PIPE)
        proc.process.stdin.write(b"routed\n")
        proc.process.stdin.close()
        assert proc.wait(30) == 0, proc.log()
        assert [m.body for m in broker.consume_all(queue_name)] == [b"routed"]
    finally:
        broker.channel.exchange_delete(exchange)


def test_sighup_reconnects_only_when_a_route_changes(broker, config, tailrabbit_factory,
                                                     tmp_path):
    """10 HUPs with the same config: no new connection and nothing repeated; a changed
    queue: one planned reconnect, still nothing repeated."""
    first, second = unique("tr-hup"), unique("tr-hup2")
    broker.queues += [first, second]
    path = str(tmp_path / "web.fifo")
    config["input:web"] = {"type": "fifo", "path": path, "queue": first}
    proc = tailrabbit_factory(config, name="hup")
    os.close(open_writer(path))
    writer = LineWriter(path, 8000, 1000).start()
    wait_for(lambda: writer.written > 500, message="traffic")
    for count in range(1, 11):
        proc.signal(signal.SIGHUP)
        wait_for(lambda: len(proc.logged("reloaded")) == count,
                 message=f"reload {count}")
    assert len(proc.logged("connected")) == 1, proc.log()
    config["input:web"]["queue"] = second
    write_config(tmp_path / "hup.ini", config)
    proc.signal(signal.SIGHUP)
    wait_for(lambda: len(proc.logged("connected")) == 2, message="one reconnect")
    writer.join()
    wait_for(lambda: broker.depth(first) + broker.depth(second) >= writer.count,
             message="every line")
    assert proc.stop() == 0, proc.log()
    assert len(proc.logged("connected")) == 2
    bodies = [m.body for m in broker.consume_all(first) + broker.consume_all(second)]
    assert bodies == writer.expected()         # nothing repeated, nothing reordered
