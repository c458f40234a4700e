"""Scenarios 1 and 2 of the cluster issue: the node tailrabbit is connected to is killed;
the node leading its quorum queue is killed. FIFO traffic at 1,000 lines/s throughout."""

import os
import time

from helpers import unique, wait_for
from integration.test_fifo import open_writer
from cluster.traffic import (LOG_FORMAT, Consumer, TimedWriter, declare_on, log_events,
                             parked_retries, reconnects, report, unconfirmed_at_losses)

RATE, COUNT = 1000, 8000


def fifo_input(config, tmp_path, queue, name="web"):
    path = str(tmp_path / f"{name}.fifo")
    config[f"input:{name}"] = {"type": "fifo", "path": path, "queue": queue,
                               "arguments": '{"x-queue-type": "quorum"}'}
    config["logging"] = {"log_format": LOG_FORMAT}
    return path


def test_killing_the_connected_node_loses_nothing_and_reconnects_to_the_next_at_once(
        cluster, cluster_config, tailrabbit_factory, tmp_path):
    queue = unique("tr-qq")
    path = fifo_input(cluster_config, tmp_path, queue)
    proc = tailrabbit_factory(cluster_config)
    proc.wait_for_event("connected")
    first = wait_for(lambda: cluster.node_of(proc.pid), message="tailrabbit's connection")
    assert cluster.leader_of(queue) == first        # declared there: it dies with it
    survivor = next(n for n in cluster.nodes if n.node != first)
    consumer = Consumer(survivor.address, queue).start()
    os.close(open_writer(path))
    writer = TimedWriter(path, COUNT, RATE, prefix=b"node-loss").start()
    wait_for(lambda: writer.written > 3000, message="traffic")
    epoch_minus_monotonic = time.time() - time.monotonic()     # to compare with log stamps
    killed, at_kill = time.monotonic(), writer.written
    cluster.by_name(first).kill()
    writer.join()
    consumer.wait_count(COUNT)
    assert proc.stop() == 0, proc.log()
    consumer.stop()
    (took, lost_at, now_at), = reconnects(proc)
    assert lost_at == cluster.by_name(first).address and now_at != lost_at
    # the next host at once: no backoff (its first step alone is 0.25-0.5 s; before this
    # change 0.38-0.50 s in all; 0.27 s seen without one on a loaded machine), no attempt
    # at the dead node first
    assert not proc.logged("hosts_all_dropped") and took < 1.0, proc.log()
    tried = proc.logged("connect_failed", lost_at) + proc.logged("connect_refused", lost_at)
    assert not tried, proc.log()
    duplicates = report("node loss", consumer.bodies(), writer.expected(),
                        reconnect_s=took,
                        delivery_resumed_s=consumer.resumed(killed, at_kill),
                        stall_s=consumer.longest_gap(), longest_write_s=writer.longest_write)
    assert duplicates <= unconfirmed_at_losses(proc)
    assert writer.longest_write < 0.5             # the FIFO writer was never blocked
    # The new leader nacks until it is elected (0.3-2.5 s seen here: the broker's Raft
    # timing under load, not ours). tailrabbit parks the input and retries a young
    # connection's nacks at once-ish (first retry <= 0.25 s, not the 1-2 s of a full
    # queue: delivery resumed 1.3-2.0 s after the kill before that). A retry waits for the
    # confirms (or nacks) of lines still in flight, which come only with a leader; once the
    # retry's connection is up, delivery resumes within a publish and a confirm.
    retries = parked_retries(proc)
    resumed_at = epoch_minus_monotonic + killed + consumer.resumed(killed, at_kill)
    if retries:
        assert retries[0][1] <= 0.25, proc.log()
        retried_at = max(stamp for stamp, _level, event, _message in log_events(proc)
                         if event == "connected")
        assert retried_at >= retries[-1][0] and resumed_at <= retried_at + 1.0, proc.log()
    else:                                           # elected before the first publish
        assert consumer.resumed(killed, at_kill) < 1.0


def test_killing_the_quorum_leader_loses_nothing(cluster, cluster_config,
                                                 tailrabbit_factory, tmp_path):
    a, b, c = cluster.nodes
    queue = unique("tr-qq")
    declare_on(b, queue, **{"x-queue-type": "quorum"})        # leader: b
    assert cluster.leader_of(queue) == b.node
    cluster_config["rabbitmq"]["host"] = ", ".join(n.address for n in (a, c, b))
    path = fifo_input(cluster_config, tmp_path, queue)
    proc = tailrabbit_factory(cluster_config)
    proc.wait_for_event("connected")
    assert wait_for(lambda: cluster.node_of(proc.pid)) == a.node
    consumer = Consumer(c.address, queue).start()
    os.close(open_writer(path))
    writer = TimedWriter(path, COUNT, RATE, prefix=b"leader-loss").start()
    wait_for(lambda: writer.written > 3000, message="traffic")
    killed, at_kill = time.monotonic(), writer.written
    b.kill()
    new_leader = wait_for(lambda: cluster.leader_of(queue) not in (None, "", b.node)
                          and cluster.leader_of(queue), timeout=30, message="a new leader")
    elected = time.monotonic() - killed
    writer.join()
    consumer.wait_count(COUNT)
    assert proc.stop() == 0, proc.log()
    consumer.stop()
    assert reconnects(proc) == []                   # the connection to a never dropped
    duplicates = report("leader loss", consumer.bodies(), writer.expected(),
                        new_leader=new_leader.split("@")[0], elected_s=elected,
                        delivery_resumed_s=consumer.resumed(killed, at_kill),
                        stall_s=consumer.longest_gap(), longest_write_s=writer.longest_write)
    assert duplicates <= unconfirmed_at_losses(proc)
    assert writer.longest_write < 0.5
