"""The process's lifecycle: a dead input stops everything with exit 1 (supervisord restarts
it), an unusable state_dir is a config error."""

import os
import signal
import subprocess
import sys

from helpers import REPO, run_cli, wait_for, write_config
from integration.test_fifo import open_writer


CRASHING_INPUT = """
import sys
from gevent import monkey
monkey.patch_socket()
import gevent
from tailrabbit import cli, daemon as daemon_module
from tailrabbit.inputs.fifo import FifoInput

def crash(self):
    gevent.sleep(0.2)
    raise RuntimeError("disk on fire")
FifoInput.run = crash
sys.exit(cli.main(["-c", sys.argv[1]]))
"""


def test_a_crashed_input_stops_the_process_with_exit_1(config, tmp_path):
    config["input:web"] = {"type": "fifo", "path": str(tmp_path / "web.fifo")}
    path = write_config(tmp_path / "c.ini", config)
    result = subprocess.run([sys.executable, "-c", CRASHING_INPUT, str(path)],
                            capture_output=True, timeout=60, cwd=REPO)
    assert result.returncode == 1, result.stderr
    assert b"input web failed: RuntimeError('disk on fire')" in result.stderr


def test_an_unwritable_state_dir_is_a_config_error(config, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    config["tailrabbit"]["state_dir"] = str(blocker / "state")
    config["input:web"] = {"type": "fifo", "path": str(tmp_path / "web.fifo")}
    result = run_cli("-c", str(write_config(tmp_path / "c.ini", config)))
    assert result.returncode == 78
    assert "[tailrabbit] state_dir: cannot write to" in result.stderr.decode()
    assert len(result.stderr.decode().splitlines()) == 1


def test_sigusr2_logs_every_greenlets_stack_and_changes_nothing(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """SIGUSR2: the stack of every greenlet (the reader waiting on its FIFO, the
    publisher), code positions only; the process goes on reading and publishing."""
    path = str(tmp_path / "web.fifo")
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
    proc = tailrabbit_factory(config)
    proc.wait_for_event("connected")
    secret = b"a line the dump must not show"
    fd = open_writer(path)
    os.write(fd, secret + b"\n")
    broker.wait_depth(queue_name, 1)
    proc.signal(signal.SIGUSR2)
    proc.wait_for_event("tasks_dumped")
    dump = wait_for(lambda: (lambda log: "publisher/loop.py" in log and log)(
        proc.log().split("[tasks_dumped]", 1)[1]), message="the whole dump")
    assert "inputs/fifo.py" in dump and "publisher/loop.py" in dump, dump
    assert secret.decode() not in dump
    os.write(fd, b"after\n")
    os.close(fd)
    broker.wait_depth(queue_name, 2)
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == [secret, b"after"]
