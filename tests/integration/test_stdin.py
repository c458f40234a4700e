"""stdin end to end: bytes exact, properties and headers, EOF exit, the seed config."""

import socket
import subprocess
import time

from helpers import run_cli, write_config

ODD_LINES = [
    b"  leading and trailing spaces  ",
    b"\ttabs\tinside\t",
    b"carriage return\r",
    b"invalid utf-8 \xff\xfe\xc3(",
    b"nul \x00 byte",
    b"plain",
    "unicode \u00e9\u4e2d".encode(),
]


def stdin_input(config, queue, **extra):
    config["input:in"] = {"type": "stdin", "queue": queue, **extra}
    return config


def test_bytes_arrive_exactly_and_empty_lines_are_skipped(broker, config, queue_name,
                                                          tailrabbit_factory):
    data = b"\n".join(ODD_LINES[:3]) + b"\n\n\n" + b"\n".join(ODD_LINES[3:]) + b"\nno newline"
    proc = tailrabbit_factory(stdin_input(config, queue_name), stdin=subprocess.PIPE)
    proc.process.stdin.write(data)
    proc.process.stdin.close()
    assert proc.wait(30) == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == ODD_LINES + [b"no newline"]


def test_properties_and_headers(broker, config, queue_name, tailrabbit_factory):
    before = int(time.time())
    proc = tailrabbit_factory(stdin_input(config, queue_name, delivery_mode=1),
                              stdin=subprocess.PIPE)
    proc.process.stdin.write(b"one line\n")
    proc.process.stdin.close()
    assert proc.wait(30) == 0, proc.log()
    [message] = broker.consume_all(queue_name)
    props = message.properties
    assert props["delivery_mode"] == 1
    assert props["content_type"] == "text/plain"
    assert props["app_id"] == "tailrabbit"
    assert before - 1 <= props["timestamp"] <= time.time() + 1
    assert props["application_headers"] == {"input": "in", "host": socket.gethostname()}


def test_stdin_eof_exits_zero_after_every_line_is_confirmed(broker, config, queue_name,
                                                            tailrabbit_factory, tmp_path):
    count = 50000
    path = tmp_path / "bulk.txt"
    path.write_bytes(b"".join(b"line %06d\n" % i for i in range(count)))
    with open(path, "rb") as handle:
        proc = tailrabbit_factory(stdin_input(config, queue_name), stdin=handle)
        assert proc.wait(60) == 0, proc.log()
    # Exit 0 means confirmed: the queue must hold every line already, no waiting.
    assert broker.depth(queue_name) == count
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == [b"line %06d" % i for i in range(count)]
    assert proc.logged("stopped", "done: every line confirmed"), proc.log()


def test_seed_config_ships_stdin_to_its_queue(broker, queue_name, tmp_path, state_dir):
    seed = write_config(tmp_path / "log_to_rabbitmq.conf", {
        "tailrabbit": {"state_dir": state_dir},
        "rabbitmq": {"host": "127.0.0.1", "queue": queue_name, "durable": "False",
                     "auto_delete": "False", "delivery_mode": 2, "refresh": 50,
                     "buffer": 1000},
    })
    result = run_cli("-c", str(seed), "-l", "30", stdin=b"seed line 1\nseed line 2\n")
    assert result.returncode == 0, result.stderr
    messages = broker.consume_all(queue_name)
    assert [m.body for m in messages] == [b"seed line 1", b"seed line 2"]
    assert messages[0].properties["delivery_mode"] == 2
    assert messages[0].properties["application_headers"]["input"] == "stdin"
    assert b"INFO" not in result.stderr          # -l 30 is WARNING
