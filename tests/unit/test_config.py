import os

import pytest

from tailrabbit import config


def load(tmp_path, text, environ=None):
    path = tmp_path / "c.ini"
    path.write_text(text)
    return config.load(str(path), environ=environ or {})


def test_seed_config_is_one_stdin_input(tmp_path):
    settings = load(tmp_path, "[rabbitmq]\nhost = localhost\nqueue = logs\ndurable = False\n"
                              "auto_delete = True\ndelivery_mode = 1\nrefresh = 30\n"
                              "buffer = 500\n[logging]\n"
                              "log_format = %%(asctime)s %%(message)s\n")
    [item] = settings.inputs
    assert (item.name, item.type, item.queue, item.durable, item.auto_delete,
            item.delivery_mode) == ("stdin", "stdin", "logs", False, True, 1)
    assert settings.process.buffer == 500
    assert settings.broker.refresh == 30
    assert settings.logging.format == "%(asctime)s %(message)s"


def test_rabbitmq_flags_are_input_defaults_and_inputs_override(tmp_path):
    settings = load(tmp_path, "[rabbitmq]\ndurable = no\ndelivery_mode = 1\n"
                              "[input:a]\ntype = stdin\n"
                              "[input:b]\ntype = fifo\npath = /tmp/b\ndurable = YES\n")
    a, b = settings.inputs
    assert (a.durable, a.delivery_mode, a.queue, a.routing_key) == (False, 1, "a", "a")
    assert (b.durable, b.overflow) == (True, "spool")
    assert a.overflow == "block"


def test_hosts_list_and_refresh_none(tmp_path):
    settings = load(tmp_path, "[rabbitmq]\nhost = r1, r2:5673\nport = 5999\nrefresh = None\n"
                              "[input:a]\ntype = stdin\n")
    assert settings.broker.hosts == (("r1", 5999), ("r2", 5673))
    assert settings.broker.refresh is None


def test_password_sources(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    settings = load(tmp_path, f"[rabbitmq]\npassword_file = {secret}\n[input:a]\ntype=stdin\n")
    assert settings.broker.password == "from-file"
    settings = load(tmp_path, "[rabbitmq]\npassword_env = PW\n[input:a]\ntype=stdin\n",
                    environ={"PW": "from-env"})
    assert settings.broker.password == "from-env"
    assert "from-env" not in repr(settings)
    with pytest.raises(config.ConfigError, match="password_env: environment variable"):
        load(tmp_path, "[rabbitmq]\npassword_env = NOPE\n[input:a]\ntype=stdin\n")


def test_same_queue_with_other_flags_is_refused(tmp_path):
    with pytest.raises(config.ConfigError, match=r"\[input:b\] queue: queue 'q' is also used"):
        load(tmp_path, "[input:a]\ntype = stdin\nqueue = q\n"
                       "[input:b]\ntype = fifo\npath = /x\nqueue = q\ndurable = no\n")


def test_level_accepts_names_and_numbers():
    assert config.parse_level("30", ValueError) == "30"
    assert config.parse_level("debug", ValueError) == "DEBUG"


def test_a_password_file_readable_by_others_is_warned_about(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    settings = load(tmp_path, f"[rabbitmq]\npassword_file = {secret}\n[input:a]\ntype=stdin\n")
    assert settings.broker.password == "s3cret"
    [warning] = settings.warnings
    assert "can be read by others (mode 644)" in warning and "s3cret" not in warning
    secret.chmod(0o600)
    settings = load(tmp_path, f"[rabbitmq]\npassword_file = {secret}\n[input:a]\ntype=stdin\n")
    assert settings.warnings == ()


def test_tls_defaults_to_port_5671(tmp_path):
    settings = load(tmp_path, "[rabbitmq]\nssl = True\nhost = a, b:6000\n[input:a]\ntype=stdin\n")
    assert settings.broker.hosts == (("a", 5671), ("b", 6000))


def test_the_shipped_example_configs_are_valid(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    demo_text = open(f"{root}/config/demo.ini").read().replace(
        "= demo-state/", f"= {root}/demo-state/")
    demo = load(tmp_path, demo_text)
    assert [i.type for i in demo.inputs] == ["fifo", "file"]
    text = open(f"{root}/config/inputs.ini").read().replace(
        "password_file = /etc/tailrabbit/rabbitmq-password", "password = x")
    example = load(tmp_path, text)
    assert [(i.name, i.type, i.overflow) for i in example.inputs] == [
        ("nginx", "fifo", "spool"), ("api", "file", "block")]


def test_buffer_bytes_defaults_to_256_mib_and_is_read(tmp_path):
    inputs = "[input:a]\ntype = stdin\n"
    assert load(tmp_path, inputs).process.buffer_bytes == 268435456
    settings = load(tmp_path, "[tailrabbit]\nbuffer_bytes = 67108864\n" + inputs)
    assert settings.process.buffer_bytes == 67108864
    settings = load(tmp_path, "[tailrabbit]\nbuffer_bytes = 4096\n"
                              "[input:a]\ntype = stdin\nmax_line_bytes = 4096\n")
    assert settings.process.buffer_bytes == 4096


@pytest.mark.parametrize("value, problem", [
    ("64MiB", "must be a whole number, got '64MiB'"),
    ("1.5", "must be a whole number, got '1.5'"),
    ("0", "must be at least 1, got 0"),
    ("-5", "must be at least 1, got -5"),
    ("100000", "must be at least max_line_bytes of input a (1048576), got 100000: "
               "it counts bytes (buffer counts lines)"),
])
def test_bad_buffer_bytes_names_file_section_key_and_problem(tmp_path, value, problem):
    with pytest.raises(config.ConfigError) as error:
        load(tmp_path, f"[tailrabbit]\nbuffer_bytes = {value}\n[input:a]\ntype = stdin\n")
    assert str(error.value) == f"{tmp_path / 'c.ini'}: [tailrabbit] buffer_bytes: {problem}"
    assert "\n" not in str(error.value)


def test_bad_buffer_bytes_exits_78_with_one_line(tmp_path):
    from helpers import run_cli
    path = tmp_path / "b.ini"
    path.write_text("[tailrabbit]\nbuffer_bytes = lots\n[input:a]\ntype = stdin\n")
    result = run_cli("-c", str(path))
    assert result.returncode == 78
    assert result.stderr.decode().strip().splitlines() == [
        f"tailrabbit: {path}: [tailrabbit] buffer_bytes: must be a whole number, got 'lots'"]
