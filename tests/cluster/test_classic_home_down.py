"""Scenario 3: a classic durable queue lives on node B, tailrabbit is on node A, B is
killed. The broker refuses that queue while B is down (publish: returned NO_ROUTE;
declare: NOT_FOUND, home node down): ERROR naming queue and node, that input's lines wait,
the other input (a quorum queue) keeps flowing, and when B is back every line arrives."""

import os
import time

from helpers import Broker, unique, wait_for
from integration.test_fifo import open_writer
from cluster.traffic import (LOG_FORMAT, Consumer, TimedWriter, declare_on, log_events,
                             reconnects, report)

RATE, COUNT = 500, 6000
OUTAGE = 6.0


def test_classic_queue_whose_home_node_dies_waits_and_the_other_input_flows(
        cluster, cluster_config, tailrabbit_factory, tmp_path):
    a, b, c = cluster.nodes
    classic, quorum = unique("tr-classic"), unique("tr-qq")
    declare_on(b, classic)                                   # home: b
    assert cluster.home_of(classic) == b.node
    cluster_config["rabbitmq"]["host"] = ", ".join(n.address for n in (a, c, b))
    cluster_config["logging"] = {"log_format": LOG_FORMAT}
    paths = {name: str(tmp_path / f"{name}.fifo") for name in ("classic", "logs")}
    cluster_config["input:classic"] = {"type": "fifo", "path": paths["classic"],
                                       "queue": classic}
    cluster_config["input:logs"] = {"type": "fifo", "path": paths["logs"], "queue": quorum,
                                    "arguments": '{"x-queue-type": "quorum"}'}
    proc = tailrabbit_factory(cluster_config)
    proc.wait_for_event("connected")
    assert wait_for(lambda: cluster.node_of(proc.pid)) == a.node
    consumer = Consumer(c.address, quorum).start()
    for path in paths.values():
        os.close(open_writer(path))
    writers = {name: TimedWriter(path, COUNT, RATE, prefix=name.encode()).start()
               for name, path in paths.items()}
    wait_for(lambda: writers["logs"].written > 1500, message="traffic")
    killed = time.monotonic()
    b.kill()
    proc.wait_for_event("input_parked", timeout=30, containing=b.node)  # names the node
    time.sleep(max(0.0, killed + OUTAGE - time.monotonic()))   # the outage lasts OUTAGE s
    b.start()
    back = time.monotonic()
    for writer in writers.values():
        writer.join()
    consumer.wait_count(COUNT)
    checker = Broker(b.address)
    checker.wait_depth(classic, COUNT, timeout=90)
    all_in = time.monotonic() - back
    assert proc.stop() == 0, proc.log()
    consumer.stop()
    classic_bodies = [m.body for m in checker.consume_all(classic)]
    checker.channel.queue_delete(classic)
    checker.close()
    errors = [m for _, level, _event, m in log_events(proc) if level == "ERROR"]
    assert any(classic in m and b.node in m for m in errors), errors
    assert not any("logs" in m.split(":")[0] for m in errors), errors   # never parked
    report("classic home node down: the classic input", classic_bodies,
           writers["classic"].expected(), after_node_back_s=all_in)
    stall = consumer.longest_gap(since=killed)
    duplicates = report("classic home node down: the quorum input", consumer.bodies(),
                        writers["logs"].expected(), stall_s=stall,
                        retries=len(proc.logged("connected")) - 1,
                        connection_losses=len(reconnects(proc)),
                        longest_write_s=max(w.longest_write for w in writers.values()))
    assert duplicates == 0 and reconnects(proc) == []     # the quorum input untouched
    assert stall < 1.5          # retries of the parked input pause it briefly; was 4.6 s
    assert max(w.longest_write for w in writers.values()) < 0.5    # never blocked
