"""Fourth hostile review, pipes (1ab4167: a FIFO's kept line is never stranded). A reload
that turns a FIFO (or stdin) input into a FILE input goes through InputSet.replace (the
type is a reading key, and the old input is no file input): the old reader hands its
unfinished line to a Handover that a file input never takes. The writer's first part,
and a multiline event held by the framer, were lost: no ERROR, no count."""

import os
import signal

from faults.test_review3_pipes import _all_confirmed, _mid_line_writer
from helpers import wait_for, write_config


def test_a_reload_turning_a_fifo_input_into_a_file_input_loses_no_unfinished_line(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    path, log = str(tmp_path / "web.fifo"), tmp_path / "app.log"
    log.write_bytes(b"from file\n")
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
    proc = tailrabbit_factory(config)
    fifo_fd = _mid_line_writer(path)              # b"first half|" read, writer stays
    broker.wait_depth(queue_name, 1)
    config["input:web"] = {"type": "file", "path": str(log), "queue": queue_name,
                           "start_at": "beginning"}
    write_config(tmp_path / "tailrabbit.ini", config)
    proc.signal(signal.SIGHUP)
    proc.wait_for_event("reloaded")
    broker.wait_depth(queue_name, 2)              # the file's line: the new input reads
    wait_for(lambda: _all_confirmed(proc, "web"), message="every line read confirmed")
    assert proc.stop() == 0, proc.log()
    os.close(fifo_fd)
    bodies = [m.body for m in broker.consume_all(queue_name)]
    # the FIFO's line ends there (nobody reads that FIFO on): a line of its own
    assert sorted(bodies) == sorted([b"complete 1", b"first half|", b"from file"]), (
        bodies, proc.log())
