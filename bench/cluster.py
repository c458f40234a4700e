"""Cluster benchmark: a private 3-node RabbitMQ cluster on this machine (the test fixture's,
tests/cluster/cluster.py; the shared broker on 5672 is never touched), in one run:

    throughput   lines/s into a quorum queue and into a classic queue on the same cluster,
                 for tailrabbit (stdin input, confirms on, timed until it exits: every line
                 confirmed) and rabbitmq-c's amqp-publish (no confirms, timed until every
                 line is in the queue, or until the queue stopped growing: lines it lost
                 are shown), persistent messages, all to node 1
    recovery     FIFO traffic at 1,000 lines/s into a quorum queue; the node tailrabbit is
                 connected to (node loss), or the node leading the queue (leader loss), is
                 killed -9, REPS times each: the reconnect time (from tailrabbit's log) and
                 the time until the first line written after the kill reaches a consumer;
                 median and max, and lost / duplicated lines over all repetitions. Node
                 loss is measured twice: with the queue's leader on the killed node (a
                 leader election follows) and on another node.

    .venv/bin/python bench/cluster.py [--lines 100000] [--size 100] [--reps 5]
        [--parts throughput,recovery] [--before DIR]

Machines here are noisy (2 cores shared): read the ratios, not the absolute rates.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests"), ROOT]

from cluster.cluster import Cluster                              # noqa: E402
from cluster.traffic import (LOG_FORMAT, Consumer, TimedWriter, declare_on,  # noqa: E402
                             reconnects)
from helpers import Broker, Tailrabbit, unique, wait_for, write_config  # noqa: E402
from integration.test_fifo import open_writer                    # noqa: E402

QUORUM = {"x-queue-type": "quorum"}


def config_for(cluster, tmp, inputs, hosts=None):
    state = tempfile.mkdtemp(dir=tmp, prefix="state-")
    return write_config(os.path.join(tmp, unique("bench") + ".ini"), {
        "tailrabbit": {"state_dir": state, "stats_interval": 0, "shutdown_timeout": 5},
        "rabbitmq": {"host": ", ".join(n.address for n in hosts or cluster.nodes),
                     "refresh": "None", "heartbeat": 5, "connect_timeout": 2},
        "logging": {"log_format": LOG_FORMAT},
        **inputs})


def throughput(cluster, tmp, data, count, kind, publisher):
    node = cluster.nodes[0]
    queue = unique(f"bench-{kind}")
    arguments = QUORUM if kind == "quorum" else {}
    declare_on(node, queue, **arguments)
    checker = Broker(node.address)
    checker.queues.append(queue)
    try:
        started = time.monotonic()
        with open(data, "rb") as handle:
            if publisher == "tailrabbit":
                arguments_text = '{"x-queue-type": "quorum"}' if arguments else ""
                keys = {"type": "stdin", "queue": queue}
                if arguments_text:
                    keys["arguments"] = arguments_text
                config = config_for(cluster, tmp, {"input:bulk": keys})
                subprocess.run([sys.executable, "-m", "tailrabbit", "-c", str(config),
                                "-l", "WARNING"], stdin=handle, check=True, cwd=ROOT)
            else:
                subprocess.run(["amqp-publish", "-l", "-p", "-r", queue, "-s", "127.0.0.1",
                                "--port", str(node.port)], stdin=handle, check=True)
        depth, done = settle(checker, queue, count)
        return depth / (done - started), count - depth
    finally:
        checker.close()


def settle(checker, queue, count, quiet=5.0):
    """(depth, when it last grew) once every line is in or it stopped growing for
    `quiet` s: a publisher without confirms can lose lines and never get there."""
    depth, changed = -1, time.monotonic()
    while True:
        now_depth = checker.depth(queue)
        if now_depth != depth:
            depth, changed = now_depth, time.monotonic()
        if depth >= count or time.monotonic() - changed > quiet:
            return depth, changed
        time.sleep(0.05)


MODES = {   # what: (node that leads the queue, host list order, node killed)
    "node loss, leader on it": (0, (0, 1, 2), 0),
    "node loss, leader elsewhere": (1, (0, 2, 1), 0),
    "leader loss": (1, (0, 2, 1), 1),
}


def recovery(cluster, tmp, what, root=ROOT):
    """One repetition: (reconnect s or None, delivery resumed s, lost, duplicates).
    tailrabbit is on node 1 (its first host) throughout."""
    import helpers
    leader, victim = cluster.nodes[MODES[what][0]], cluster.nodes[MODES[what][2]]
    order = [cluster.nodes[i] for i in MODES[what][1]]
    queue = unique("bench-rec")
    declare_on(leader, queue, **QUORUM)
    fifo = os.path.join(tmp, unique("rec") + ".fifo")
    config = config_for(cluster, tmp, {"input:web": {
        "type": "fifo", "path": fifo, "queue": queue,
        "arguments": '{"x-queue-type": "quorum"}'}}, order)
    helpers.REPO = root                 # --before: that checkout's tailrabbit
    proc = Tailrabbit(str(config), str(config) + ".log")
    try:
        proc.wait_log("connected to")
        watcher = next(n for n in cluster.nodes if n is not victim and n is not order[0])
        consumer = Consumer(watcher.address, queue).start()
        os.close(open_writer(fifo))
        writer = TimedWriter(fifo, 6000, 1000, prefix=b"rec").start()
        wait_for(lambda: writer.written > 2000, message="traffic")
        assert cluster.leader_of(queue) == leader.node
        killed, at_kill = time.monotonic(), writer.written
        victim.kill()
        writer.join()
        consumer.wait_count(writer.count)
        status = proc.stop()
        assert status == 0, f"tailrabbit exited {status}: {proc.log()[-300:]}"
        consumer.stop()
        resumed = next(stamp for stamp, body in consumer.arrivals
                       if int(body.split()[1]) >= at_kill) - killed
        bodies = consumer.bodies()
        lost = len(set(writer.expected()) - set(bodies))
        duplicates = len(bodies) - len(set(bodies))
        moves = reconnects(proc)
        return (moves[0][0] if moves else None), resumed, lost, duplicates
    finally:
        proc.kill()
        for node in cluster.nodes:
            if not node.running:
                node.start()
        cluster.wait_running(3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--before", metavar="DIR",
                        help="also the recovery rows of an older tailrabbit checkout "
                             "(git archive REV tailrabbit | tar -x -C DIR)")
    parser.add_argument("--parts", default="throughput,recovery")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="tr-bench-cluster-")
    cluster = Cluster(os.path.join(tmp, "cluster"))
    try:
        cluster.start()
        print(f"3-node cluster (RabbitMQ, private, 127.0.0.1) started in "
              f"{cluster.started_in:.1f} s")
        if "throughput" in args.parts:
            throughput_rows(cluster, tmp, args)
        if "recovery" in args.parts:
            recovery_rows(cluster, tmp, args)
    finally:
        cluster.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def throughput_rows(cluster, tmp, args):
    data = os.path.join(tmp, "lines")
    with open(data, "wb") as handle:
        for i in range(args.lines):
            handle.write((b"%09d " % i).ljust(args.size, b"x") + b"\n")
    publishers = ["tailrabbit"] + (["amqp-publish"] if shutil.which("amqp-publish")
                                   else [])
    print(f"\n| {args.lines:,} lines of {args.size} B, persistent | "
          + " | ".join(f"{p} lines/s" for p in publishers) + " |")
    print("|---|" + "---:|" * len(publishers))
    for kind in ("quorum", "classic"):
        rows = [throughput(cluster, tmp, data, args.lines, kind, p) for p in publishers]
        print(f"| {kind} queue | " + " | ".join(
            f"{rate:,.0f}" + (f" ({lost:,} lost)" if lost else "") for rate, lost in rows)
            + " |", flush=True)


def recovery_rows(cluster, tmp, args):
    print(f"\n| recovery, {args.reps} repetitions, quorum queue, 1,000 lines/s | "
          "reconnect median / max | delivery resumed median / max | lost | duplicates |")
    print("|---|---:|---:|---:|---:|")
    roots = [("", ROOT)] + ([(" (before)", os.path.abspath(args.before))]
                            if args.before else [])
    for what in MODES:
        for label, root in roots:
            runs, failures = [], []
            for _ in range(args.reps):
                try:
                    runs.append(recovery(cluster, tmp, what, root))
                except Exception as error:      # a row with a failed repetition says so
                    failures.append(f"{error.__class__.__name__}: {error}")
            if not runs:
                print(f"| {what}{label} | every repetition failed: {failures[0]} |")
                continue
            moves = [r[0] for r in runs if r[0] is not None]
            resumed = [r[1] for r in runs]
            move_text = (f"{statistics.median(moves):.2f} / {max(moves):.2f} s" if moves
                         else "none (connection kept)")
            print(f"| {what}{label} | {move_text} | {statistics.median(resumed):.2f} / "
                  f"{max(resumed):.2f} s | {sum(r[2] for r in runs)} | "
                  f"{sum(r[3] for r in runs)} |"
                  + (f" {len(failures)} failed: {failures[0]}" if failures else ""),
                  flush=True)


if __name__ == "__main__":
    main()
