"""`[logging] style = json`: a real tailrabbit writes one JSON object per stderr line, and
a test (or Loki, or jq) follows it by event name and fields instead of by wording."""

import json
import os
import signal

from helpers import wait_for
from tailrabbit.logevents import EVENTS


def records(proc):
    """Every complete stderr line, parsed (a line that is not JSON fails the test)."""
    text = proc.log()
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines.pop()                          # being written right now
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return parsed


def wait_event(proc, event, timeout=20.0, **fields):
    """The first record of `event` whose fields include `fields`."""
    def found():
        for record in records(proc):
            if record["event"] == event and all(record.get(k) == v for k, v in fields.items()):
                return record
        return None
    return wait_for(found, timeout, message=f"event {event} {fields or ''} in the log")


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

    connected = wait_event(proc, "connected")
    assert connected["level"] == "INFO" and connected["confirms"] == "on"
    assert connected["message"] == f"connected to {connected['address']} (confirms on)"
    missing = wait_event(proc, "file_missing", input="later")
    assert (missing["level"], missing["path"]) == ("WARNING", later)
    assert missing["message"] == f"input later: {later} does not exist yet; waiting for it"
    broker.wait_depth(queue_name, 3)

    os.rename(log_path, log_path + ".1")                 # logrotate's rename + create
    with open(log_path, "wb") as handle:
        handle.write(b"four\nfive\n")
    rotated = wait_event(proc, "file_rotated", input="app", path=log_path)
    assert rotated["level"] == "INFO"
    assert rotated["message"] == (f"input app: {log_path} was rotated or deleted; reading "
                                  f"the old file to its end")
    broker.wait_depth(queue_name, 5)

    proc.signal(signal.SIGUSR1)                          # the stats, now
    stats = wait_event(proc, "stats", input="app", confirmed=5)
    assert (stats["read"], stats["published"], stats["dropped"]) == (5, 5, 0)
    assert stats["connection"].startswith("connected to")
    assert proc.stop() == 0

    every = records(proc)
    assert every and all({"ts", "level", "event", "message"} <= set(r) for r in every)
    assert all(r["event"] in EVENTS or r["event"] == "log" for r in every)
    assert {"connected", "file_missing", "file_rotated", "stats"} <= {r["event"] for r in every}
    assert [m.body for m in broker.consume_all(queue_name)] == [
        b"one", b"two", b"three", b"four", b"five"]
