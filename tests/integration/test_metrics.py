"""/metrics equals what was shipped; /health flips to 503 when the broker is unreachable
beyond the buffer."""

import os
import re
import socket
import urllib.error
import urllib.request

from faults.proxy import FaultProxy
from helpers import BROKER, base_config, run_cli, wait_for, write_config
from integration.test_fifo import open_writer


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def metric(text, name, input_name=None):
    label = f'{{input="{input_name}"}}' if input_name else ""
    match = re.search(rf"^{re.escape(name + label)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def test_metrics_equal_the_lines_shipped(broker, config, queue_name, tailrabbit_factory,
                                         tmp_path):
    port = free_port()
    config["tailrabbit"]["metrics"] = f"127.0.0.1:{port}"
    path = str(tmp_path / "web.fifo")
    config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name,
                           "max_line_bytes": 100}
    proc = tailrabbit_factory(config)
    fd = open_writer(path)
    os.write(fd, b"".join(b"line %04d\n" % i for i in range(1234)) + b"x" * 300 + b"\n")
    os.close(fd)
    broker.wait_depth(queue_name, 1235)
    text = wait_for(lambda: (lambda t: t if metric(t, "tailrabbit_lines_confirmed_total",
                                                   "web") == 1235 else None)(
        get(port, "/metrics")[1]), message="confirmed=1235 in /metrics")
    assert metric(text, "tailrabbit_lines_read_total", "web") == 1235
    assert metric(text, "tailrabbit_lines_published_total", "web") == 1235
    assert metric(text, "tailrabbit_lines_truncated_total", "web") == 1
    assert metric(text, "tailrabbit_lines_dropped_total", "web") == 0
    assert metric(text, "tailrabbit_lines_spooled_total", "web") == 0
    assert metric(text, "tailrabbit_buffered_lines", "web") == 0
    assert metric(text, "tailrabbit_buffered_bytes", "web") == 0
    assert metric(text, "tailrabbit_connected") == 1
    assert get(port, "/health")[0] == 200
    assert proc.stop() == 0


def test_health_is_503_when_the_broker_is_unreachable_beyond_the_buffer(
        broker, state_dir, queue_name, tailrabbit_factory, tmp_path):
    host, broker_port = BROKER.rsplit(":", 1)
    proxy = FaultProxy(host, int(broker_port))
    try:
        port = free_port()
        config = base_config(state_dir, broker=proxy.address, buffer=100,
                             metrics=f"127.0.0.1:{port}")
        path = str(tmp_path / "web.fifo")
        config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
        proc = tailrabbit_factory(config)
        proc.wait_for_event("connected")
        assert get(port, "/health")[0] == 200
        proxy.set_mode("refuse")
        proxy.cut()
        fd = open_writer(path)
        os.write(fd, b"".join(b"held %03d\n" % i for i in range(50)))
        wait_for(lambda: metric(get(port, "/metrics")[1], "tailrabbit_connected") == 0,
                 message="disconnected")
        assert get(port, "/health")[0] == 200        # down, but within the buffer
        text = wait_for(lambda: (lambda t: t if metric(t, "tailrabbit_buffered_lines", "web")
                                 == 50 else None)(get(port, "/metrics")[1]),
                        message="50 lines buffered")
        assert metric(text, "tailrabbit_buffered_bytes", "web") == 50 * len(b"held 000")
        os.write(fd, b"".join(b"more %03d\n" % i for i in range(500)))
        wait_for(lambda: get(port, "/health")[0] == 503, message="/health 503")
        proxy.set_mode("pass")
        wait_for(lambda: get(port, "/health")[0] == 200, timeout=30, message="/health 200")
        os.close(fd)
        broker.wait_depth(queue_name, 550)
        assert proc.stop() == 0, proc.log()
    finally:
        proxy.close()


def test_metrics_port_in_use_is_a_config_error(tmp_path, state_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        config = base_config(state_dir, metrics=f"127.0.0.1:{port}")
        config["input:x"] = {"type": "fifo", "path": str(tmp_path / "x.fifo")}
        result = run_cli("-c", str(write_config(tmp_path / "m.ini", config)))
    assert result.returncode == 78
    assert f"metrics: cannot listen on 127.0.0.1:{port}" in result.stderr.decode()


def test_health_is_503_when_the_broker_is_unreachable_beyond_buffer_bytes(
        broker, state_dir, queue_name, tailrabbit_factory, tmp_path):
    """Few lines, but long ones: the byte bound fills first and /health says so."""
    host, broker_port = BROKER.rsplit(":", 1)
    proxy = FaultProxy(host, int(broker_port))
    proxy.set_mode("refuse")
    try:
        port = free_port()
        config = base_config(state_dir, broker=proxy.address, buffer=100000,
                             buffer_bytes=100000, metrics=f"127.0.0.1:{port}")
        path = str(tmp_path / "web.fifo")
        config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name,
                               "max_line_bytes": 10000}
        proc = tailrabbit_factory(config)
        fd = open_writer(path)
        lines = [b"%03d " % i + b"x" * 9000 for i in range(30)]       # 270 KB
        os.write(fd, b"".join(line + b"\n" for line in lines[:10]))    # 90 KB: within
        text = wait_for(lambda: (lambda t: t if metric(t, "tailrabbit_buffered_lines", "web")
                                 == 10 else None)(get(port, "/metrics")[1]),
                        message="10 lines buffered")
        assert metric(text, "tailrabbit_buffered_bytes", "web") == 10 * 9004
        assert get(port, "/health")[0] == 200
        os.write(fd, b"".join(line + b"\n" for line in lines[10:]))
        wait_for(lambda: get(port, "/health")[0] == 503, message="/health 503")
        held = metric(get(port, "/metrics")[1], "tailrabbit_buffered_bytes", "web")
        assert 100000 <= held < 100000 + 65536           # passed by at most one 64 KiB read
        proxy.set_mode("pass")
        wait_for(lambda: get(port, "/health")[0] == 200, timeout=30, message="/health 200")
        os.close(fd)
        broker.wait_depth(queue_name, 30)
        assert proc.stop() == 0, proc.log()
        assert [m.body for m in broker.consume_all(queue_name)] == lines
    finally:
        proxy.close()
