"""SIGHUP under traffic: add, remove and change inputs; untouched inputs lose and repeat
nothing; a config that no longer parses keeps the running one."""

import os
import signal

from helpers import LineWriter, unique, wait_for, write_config
from integration.test_fifo import open_writer


def test_reload_adds_removes_and_changes_inputs_under_traffic(
        broker, config, tailrabbit_factory, tmp_path):
    steady, gone, moved, moved_to, added = (unique(f"tr-{n}") for n in
                                            ("steady", "gone", "moved", "moved2", "added"))
    broker.queues += [steady, gone, moved, moved_to, added]
    paths = {name: str(tmp_path / f"{name}.fifo") for name in ("steady", "gone", "moved")}
    config["input:steady"] = {"type": "fifo", "path": paths["steady"], "queue": steady}
    config["input:gone"] = {"type": "fifo", "path": paths["gone"], "queue": gone}
    config["input:moved"] = {"type": "fifo", "path": paths["moved"], "queue": moved}
    proc = tailrabbit_factory(config, name="reload")
    for path in paths.values():
        os.close(open_writer(path))
    writer = LineWriter(paths["steady"], 30000, 6000).start()   # untouched, under traffic
    gone_fd, moved_fd = open_writer(paths["gone"]), open_writer(paths["moved"])
    os.write(gone_fd, b"gone 1\ngone 2\n")
    os.write(moved_fd, b"moved before\n")
    broker.wait_depth(gone, 2)
    broker.wait_depth(moved, 1)
    wait_for(lambda: writer.written > 5000, message="traffic")

    del config["input:gone"]
    config["input:moved"]["queue"] = moved_to                    # a changed route
    log_path = tmp_path / "added.log"
    log_path.write_bytes(b"")
    config["input:added"] = {"type": "file", "path": str(log_path), "queue": added,
                             "start_at": "beginning"}
    write_config(tmp_path / "reload.ini", config)
    proc.signal(signal.SIGHUP)
    reloaded = proc.wait_for_event("reloaded")
    assert "added added, removed gone, changed moved" in reloaded

    os.write(moved_fd, b"moved after\n")
    with open(log_path, "ab") as handle:
        handle.write(b"added line\n")
    broker.wait_depth(moved_to, 1)
    broker.wait_depth(added, 1)

    (tmp_path / "reload.ini").write_text("[input:broken]\ntype = nonsense\n")
    proc.signal(signal.SIGHUP)
    refused = proc.wait_for_event("reload_refused")
    assert "[input:broken] type" in refused

    writer.join()
    broker.wait_depth(steady, writer.count)
    os.close(gone_fd)
    os.close(moved_fd)
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(steady)] == writer.expected()
    assert [m.body for m in broker.consume_all(gone)] == [b"gone 1", b"gone 2"]
    assert [m.body for m in broker.consume_all(moved)] == [b"moved before"]
    assert [m.body for m in broker.consume_all(moved_to)] == [b"moved after"]
    assert [m.body for m in broker.consume_all(added)] == [b"added line"]
