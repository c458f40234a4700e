"""Delivery under traffic: planned refresh, a connection cut, SIGTERM drain, idle CPU."""

import os
import re
import socket
import subprocess
import time

from helpers import LineWriter, check_at_least_once, wait_for
from integration.test_fifo import open_writer

# "connection to HOST lost: WHY; N lines to publish again": N is what was published and not
# confirmed at the loss, which is exactly what goes out again (acks read after the loss
# confirm nothing), so it bounds the duplicates a consumer can see.
RESENT = re.compile(r"connection to \S+ lost: .*?; (\d+) lines to publish again")


def resent_at_losses(log):
    """[N of every "N lines to publish again"] in a tailrabbit log, in order."""
    return [int(count) for count in RESENT.findall(log)]


def connections_of(pid):
    """The broker's ids of the connections of tailrabbit process `pid`, found by their
    `connection_name` (for `rabbitmqctl close_connection`: the broker is shared, so
    close_all_connections would cut other tests' connections too)."""
    wanted = f'"tailrabbit {socket.gethostname()} pid {pid}"'
    listing = subprocess.run(
        ["rabbitmqctl", "list_connections", "pid", "client_properties", "-q",
         "--no-table-headers"], check=True, capture_output=True, text=True).stdout
    return [line.split("\t")[0] for line in listing.splitlines() if wanted in line]


def fifo_input(config, queue, path):
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue}
    return config


def test_refresh_under_traffic_loses_and_repeats_nothing(broker, config, queue_name,
                                                         tailrabbit_factory, tmp_path):
    path = str(tmp_path / "web.fifo")
    config["rabbitmq"]["refresh"] = 1
    proc = tailrabbit_factory(fifo_input(config, queue_name, path))
    os.close(open_writer(path))                       # wait until it reads the FIFO
    writer = LineWriter(path, 40000, 10000).start()
    writer.join()
    broker.wait_depth(queue_name, writer.count)
    # it reconnects every second (under load, a slow start leaves fewer during traffic)
    wait_for(lambda: len(proc.logged("connected")) >= 3, timeout=15,
             message="three connections")
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == writer.expected()                 # exactly once, in order


def test_connection_cut_under_traffic_loses_nothing(broker, config, queue_name,
                                                    tailrabbit_factory, tmp_path):
    path = str(tmp_path / "web.fifo")
    proc = tailrabbit_factory(fifo_input(config, queue_name, path))
    os.close(open_writer(path))
    connections = wait_for(lambda: connections_of(proc.pid), interval=0.2,
                           message="its connection")
    assert len(connections) == 1, connections
    writer = LineWriter(path, 40000, 10000).start()
    wait_for(lambda: writer.written > 5000, message="traffic")
    # connection.close from the broker (CONNECTION_FORCED), this process's only; the CLI
    # takes about a second to start, the writer has 3.5 s of lines still to write
    subprocess.run(["rabbitmqctl", "close_connection", connections[0], "test cut"],
                   check=True, capture_output=True)
    written_at_cut = writer.written
    writer.join()
    proc.wait_for_event("connection_lost", timeout=10)
    broker.wait_depth(queue_name, writer.count)
    assert proc.stop() == 0, proc.log()
    duplicates = check_at_least_once([m.body for m in broker.consume_all(queue_name)],
                                     writer.expected())
    resent = resent_at_losses(proc.log())
    assert len(resent) == 1, proc.log()               # the one cut, and no other loss
    print(f"cut after {written_at_cut} of {writer.count} lines written: {duplicates} "
          f"duplicates of {resent[0]} lines published again")
    assert duplicates <= resent[0]      # only lines unconfirmed at the cut can repeat


def test_sigterm_publishes_what_is_buffered_and_exits_zero(broker, config, queue_name,
                                                          tailrabbit_factory, tmp_path):
    path = str(tmp_path / "web.fifo")
    config["tailrabbit"]["shutdown_timeout"] = 60      # a loaded CI broker: no spooling
    proc = tailrabbit_factory(fifo_input(config, queue_name, path))
    fd = open_writer(path)
    os.write(fd, b"".join(b"burst %05d\n" % i for i in range(20000)))
    os.close(fd)
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == [b"burst %05d" % i for i in range(20000)]


def test_idle_inputs_use_no_cpu(broker, config, queue_name, tailrabbit_factory, tmp_path):
    config = fifo_input(config, queue_name, str(tmp_path / "idle.fifo"))
    log = tmp_path / "idle.log"
    log.write_bytes(b"")
    config["input:file"] = {"type": "file", "path": str(log), "queue": queue_name}
    config["input:glob"] = {"type": "file", "path": str(tmp_path / "missing.log"),
                            "queue": queue_name}
    proc = tailrabbit_factory(config)
    proc.wait_for_event("connected")
    time.sleep(1)                                   # let start-up work finish
    before = proc.cpu_seconds()
    time.sleep(5)                                   # the measurement window itself
    used = proc.cpu_seconds() - before
    assert used < 0.1, f"{used:.3f} CPU seconds in 5 s idle"
    assert proc.stop() == 0
