"""Multiline events under faults: a FIFO's events spooled while the broker is down, then
a SIGTERM and a new start that replays them, byte exact and whole (the spool keeps each
event's "\\n"s)."""

import os
import threading

from helpers import wait_for
from integration.test_batches import _stats
from integration.test_fifo import open_writer


def test_fifo_events_spool_while_the_broker_is_down_and_replay_whole_after_a_restart(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    proxied_config["tailrabbit"]["buffer"] = 500
    path = str(tmp_path / "api.fifo")
    proxied_config["input:api"] = {"type": "fifo", "path": path, "queue": queue_name,
                                   "multiline": "python", "exclude": "healthz"}
    proc = tailrabbit_factory(proxied_config)
    fd = open_writer(path)
    events = []
    for i in range(3000):
        events.append(b"2026-11-27 INFO request %d ok" % i)
        if i % 5 == 0:
            events.append(b"2026-11-27 ERROR request %d\nTraceback (most recent call last):"
                          b"\n  File \"app.py\", line %d, in handle\n\nKeyError: %d"
                          % (i, i, i))
    noise = [b"2026-11-27 INFO GET /healthz %d" % i for i in range(300)]
    data = b"\n".join(events + noise) + b"\n"
    done = threading.Event()

    def write():
        os.write(fd, data)
        done.set()
    threading.Thread(target=write, daemon=True).start()
    assert done.wait(30), "the FIFO writer blocked while the broker was down"
    os.close(fd)                     # the writer closed: the last event is complete
    wait_for(lambda: f"read={len(events) + len(noise)} " in _stats(proc),
             message="every event read")
    last = [line for line in proc.log().splitlines() if "stats input=api" in line][-1]
    assert "spooled=0 " not in last and "filtered=300 " in last, last
    assert proc.stop() == 0, proc.log()          # the broker still down: all on disk
    proxy.set_mode("pass")
    again = tailrabbit_factory(proxied_config, name="again")
    broker.wait_depth(queue_name, len(events), timeout=60)
    assert again.stop() == 0, again.log()
    assert [m.body for m in broker.consume_all(queue_name)] == events
