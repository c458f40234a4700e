"""A file input removed by SIGHUP and added back by the next one, while lines it read are
still unconfirmed (the broker away): one checkpoint store per input name, so every line
arrives once, in order. Before, the removed input's store (kept for its late confirms)
and the new one's both wrote checkpoints-NAME.json in turns, and the new one read again
from the file on disk what the removed one had read."""

import signal

from file_helpers import append, file_input
from helpers import wait_for, write_config


def test_a_file_input_removed_and_added_back_reads_no_line_twice(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path):
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    path = str(tmp_path / "api.log")
    first = [b"first %04d" % i for i in range(300)]
    append(path, b"".join(line + b"\n" for line in first))
    config = file_input(proxied_config, queue_name, path)
    proc = tailrabbit_factory(config)
    wait_for(lambda: proc.stats("api")["read"] == 300, message="the lines read")
    api = config.pop("input:api")
    config["input:other"] = {"type": "fifo", "path": str(tmp_path / "other.fifo"),
                             "queue": queue_name}
    write_config(tmp_path / "tailrabbit.ini", config)
    proc.signal(signal.SIGHUP)
    wait_for(lambda: len(proc.logged("reloaded")) == 1, message="the input removed")
    config["input:api"] = api
    write_config(tmp_path / "tailrabbit.ini", config)
    proc.signal(signal.SIGHUP)
    wait_for(lambda: len(proc.logged("reloaded")) == 2, message="the input added back")
    later = [b"later %04d" % i for i in range(50)]
    append(path, b"".join(line + b"\n" for line in later))
    proxy.set_mode("pass")
    broker.wait_depth(queue_name, len(first) + len(later), timeout=60)
    wait_for(lambda: proc.stats("api")["confirmed"] >= len(later), message="confirms")
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == first + later, (
        f"{len(bodies)} messages for {len(first) + len(later)} lines; "
        f"{len(bodies) - len(set(bodies))} repeated")
