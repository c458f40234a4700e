"""The command line: bad configs and arguments -> 78 and one line; --check; -m; --version."""

import socket

import pytest

from helpers import run_cli, unique, write_config

BAD_CONFIGS = [
    ({"rabbitmq": {"port": "five"}}, "[rabbitmq] port: must be a whole number, got 'five'"),
    ({"rabbitmq": {"durabel": "no"}, "input:x": {"type": "stdin"}},
     "[rabbitmq] durabel: unknown key"),
    ({"input:x": {"type": "socket"}}, "[input:x] type: must be one of fifo, stdin, file"),
    ({"input:x": {"type": "fifo"}}, "[input:x] path: is required for type = fifo"),
    ({"input:x": {"type": "stdin", "delivery_mode": 3}},
     "[input:x] delivery_mode: must be 1 (transient) or 2 (persistent), got 3"),
    ({"input:x": {"type": "stdin", "durable": "maybe"}},
     "[input:x] durable: must be True or False"),
    ({"input:x": {"type": "stdin", "arguments": "{nope"}},
     "[input:x] arguments: is not valid JSON"),
    ({"input:x": {"type": "stdin", "overflow": "explode"}},
     "[input:x] overflow: must be one of spool, block, drop"),
    ({"input:x": {"type": "file", "path": "/tmp/x", "start_at": "middle"}},
     "[input:x] start_at: must be one of beginning, end"),
    ({"tailrabbit": {"buffer": "0"}, "input:x": {"type": "stdin"}},
     "[tailrabbit] buffer: must be at least 1"),
    ({"logging": {"level": "LOUD"}}, "[logging] level: must be one of DEBUG"),
    ({"logging": {"log_format": "%(bad"}}, "[logging] log_format: bad interpolation"),
    ({"inputs": {"a": "b"}}, "[inputs]: unknown section"),
]


@pytest.mark.parametrize("sections,message", BAD_CONFIGS)
def test_bad_config_exits_78_with_one_line(tmp_path, sections, message):
    path = write_config(tmp_path / "bad.ini", sections)
    result = run_cli("-c", str(path))
    assert result.returncode == 78
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tailrabbit: {path}")
    assert message in lines[0]


def test_missing_and_unparsable_files(tmp_path):
    result = run_cli("-c", str(tmp_path / "nope.ini"))
    assert (result.returncode, result.stderr.decode().strip()) == (
        78, f"tailrabbit: {tmp_path / 'nope.ini'}: no such file")
    garbage = tmp_path / "garbage.ini"
    garbage.write_text("this is not ini\n")
    result = run_cli("-c", str(garbage))
    assert result.returncode == 78
    assert "not a valid INI file" in result.stderr.decode()
    assert len(result.stderr.decode().splitlines()) == 1


def test_bad_arguments_exit_78():
    for args in (["--bogus"], ["-c"], [], ["-l", "LOUD", "-c", "x.ini"]):
        result = run_cli(*args)
        assert result.returncode == 78, args
        assert len(result.stderr.decode().splitlines()) == 1, result.stderr


def test_sample_config_passes_check(tmp_path):
    sample = run_cli("-m")
    assert sample.returncode == 0
    path = tmp_path / "sample.ini"
    path.write_bytes(sample.stdout)
    result = run_cli("--check", "-c", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.decode()
    assert "valid" in out and "login accepted" in out
    assert "does not exist yet" in out


def test_check_without_broker_exits_69(tmp_path):
    with socket.socket() as sock:          # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = write_config(tmp_path / "c.ini", {
        "rabbitmq": {"host": "127.0.0.1", "port": port, "password": "s3cret-pw",
                     "connect_timeout": 1},
        "input:x": {"type": "stdin"}})
    result = run_cli("--check", "-c", str(path))
    assert result.returncode == 69
    assert b"s3cret-pw" not in result.stdout + result.stderr


def test_version_and_help():
    assert run_cli("--version").stdout.decode().startswith("tailrabbit ")
    result = run_cli("--help")
    assert result.returncode == 0 and b"--make-config" in result.stdout


def test_two_file_inputs_on_one_path_fan_out(broker, config, tailrabbit_factory, tmp_path):
    """Accepted at load (unlike two readers of one FIFO): each file input reads the whole
    file with its own checkpoint, so one log can feed two queues."""
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(b"line %03d\n" % i for i in range(200)))
    queues = [unique("tr-fan"), unique("tr-fan")]
    broker.queues.extend(queues)
    for name, queue in zip("ab", queues):
        config[f"input:{name}"] = {"type": "file", "path": str(log), "queue": queue,
                                   "start_at": "beginning"}
    proc = tailrabbit_factory(config)
    for queue in queues:
        broker.wait_depth(queue, 200)
    assert proc.stop() == 0, proc.log()
    for queue in queues:
        assert [m.body for m in broker.consume_all(queue)] == [
            b"line %03d" % i for i in range(200)]
