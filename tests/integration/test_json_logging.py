"""`[logging] style = json`: a real tailrabbit writes one JSON object per stderr line, and
a test (or Loki, or jq) follows it by event name and fields instead of by wording."""

import json
import os
import signal

from helpers import run_cli, write_config
from tailrabbit.logevents import EVENTS


def test_json_style_names_every_event_and_carries_its_fields(broker, config, queue_name,
                                                            tailrabbit_factory, tmp_path):
    log_path = str(tmp_path / "app.log")
    later = str(tmp_path / "later.log")
    with open(log_path, "wb") as handle:
        handle.write(b"one\ntwo\nthree\n")
    config["logging"] = {"style": "json"}
    config["input:app"] = {"type": "file", "path": log_path, "queue": queue_name,
                           "start_at": "beginning", "rotate_wait": 1}
    config["input:later"] = {"type": "file", "path": later, "queue": queue_name}
    proc = tailrabbit_factory(config)

    started = proc.wait_event("started")
    assert started["inputs"] == ["app:file", "later:file"] and started["count"] == 2
    connected = proc.wait_event("connected")
    assert connected["level"] == "INFO" and connected["confirms"] == "on"
    assert connected["message"] == f"connected to {connected['address']} (confirms on)"
    missing = proc.wait_event("file_missing", input="later")
    assert (missing["level"], missing["path"]) == ("WARNING", later)
    assert missing["message"] == f"input later: {later} does not exist yet; waiting for it"
    broker.wait_depth(queue_name, 3)

    os.rename(log_path, log_path + ".1")                 # logrotate's rename + create
    with open(log_path, "wb") as handle:
        handle.write(b"four\nfive\n")
    rotated = proc.wait_event("file_rotated", input="app", path=log_path)
    assert rotated["level"] == "INFO"
    assert rotated["message"] == (f"input app: {log_path} was rotated or deleted; reading "
                                  f"the old file to its end")
    broker.wait_depth(queue_name, 5)

    proc.signal(signal.SIGUSR1)                          # the stats, now
    stats = proc.wait_event("stats", input="app", confirmed=5)
    assert (stats["read"], stats["published"], stats["dropped"]) == (5, 5, 0)
    assert stats["connection"].startswith("connected to")
    assert proc.stop() == 0

    stopping = proc.wait_event("stopping", signal="SIGTERM")
    assert stopping["level"] == "INFO" and stopping["seconds"] == 10
    assert proc.wait_event("stopped")["reason"] == "stopped"
    every = proc.events()
    assert every and all({"ts", "level", "event", "message"} <= set(r) for r in every)
    assert all(r["event"] in EVENTS or r["event"] == "log" for r in every)
    assert {"connected", "file_missing", "file_rotated", "stats"} <= {r["event"] for r in every}
    assert [m.body for m in broker.consume_all(queue_name)] == [
        b"one", b"two", b"three", b"four", b"five"]


def test_json_style_reports_config_warnings_and_startup_failures_as_events(config, tmp_path):
    """The exit-78 line of a setting that cannot be applied, and the config's warnings,
    come out as events too: a reader that parses every line gets no bare text."""
    password_file = tmp_path / "password"
    password_file.write_text("guest\n")
    password_file.chmod(0o644)                      # readable by others: a warning
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    config["tailrabbit"]["state_dir"] = str(blocker / "state")    # cannot be created
    config["rabbitmq"]["password_file"] = str(password_file)
    config["logging"] = {"style": "json"}
    config["input:web"] = {"type": "fifo", "path": str(tmp_path / "web.fifo")}
    result = run_cli("-c", str(write_config(tmp_path / "c.ini", config)))
    assert result.returncode == 78, result.stderr
    warning, failed = [json.loads(line) for line in result.stderr.decode().splitlines()]
    assert (warning["event"], warning["level"]) == ("config_warning", "WARNING")
    assert warning["reason"].endswith(f"[rabbitmq] password_file: {password_file} can be "
                                      f"read by others (mode 644); chmod 600 it")
    assert (failed["event"], failed["level"]) == ("startup_failed", "ERROR")
    assert "[tailrabbit] state_dir: cannot write to" in failed["reason"]
    assert failed["message"] == f"tailrabbit: {failed['reason']}"
