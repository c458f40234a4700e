"""Scenario 4: a rolling restart of all three nodes (stop_app / start_app, one after
another, as an upgrade is done) under steady traffic into a quorum queue: nothing lost."""

import os
import time

from helpers import unique, wait_for
from integration.test_fifo import open_writer
from cluster.traffic import LOG_FORMAT, Consumer, TimedWriter, reconnects, report, \
    unconfirmed_at_losses

RATE = 1000


def test_rolling_restart_of_every_node_loses_nothing(cluster, cluster_config,
                                                     tailrabbit_factory, tmp_path):
    queue = unique("tr-qq")
    path = str(tmp_path / "web.fifo")
    cluster_config["input:web"] = {"type": "fifo", "path": path, "queue": queue,
                                   "arguments": '{"x-queue-type": "quorum"}'}
    cluster_config["logging"] = {"log_format": LOG_FORMAT}
    proc = tailrabbit_factory(cluster_config)
    proc.wait_for_event("connected")
    os.close(open_writer(path))
    # traffic for as long as the roll takes, and 2 s after (at most 120 s)
    writer = TimedWriter(path, 120 * RATE, RATE, prefix=b"rolling").start()
    wait_for(lambda: writer.written > 1000, message="traffic")
    began = time.monotonic()
    for node in cluster.nodes:
        node.stop_app()
        node.start_app()
        cluster.wait_running(3)
    rolled = time.monotonic() - began
    assert writer.written < writer.count, "the restart outlasted the traffic"
    writer.finish_after(2 * RATE)
    writer.join(timeout=180)
    # the consumer starts after the roll: each node's restart would have cut it
    consumer = Consumer(cluster.nodes[0].address, queue).start()
    consumer.wait_count(writer.count)
    assert proc.stop() == 0, proc.log()
    consumer.stop()
    moves = reconnects(proc)
    duplicates = report("rolling restart", consumer.bodies(), writer.expected(),
                        roll_s=rolled, reconnects=len(moves),
                        slowest_reconnect_s=max((m[0] for m in moves), default=0.0),
                        longest_write_s=writer.longest_write)
    assert duplicates <= unconfirmed_at_losses(proc)
    assert writer.longest_write < 0.5
