"""Named log events (tailrabbit/logevents/): every event is declared whole, its text is
the wording operators and tests matched before events existed, the JSON style carries
name and fields, and repeating events are rate-limited."""

import configparser
import io
import json
import logging
import re
import sys

import pytest

from tailrabbit import logevents
from tailrabbit.ini import ConfigError, Section
from tailrabbit.logevents.event import Event
from tailrabbit.logging_config import logging_settings
from tailrabbit.logsetup import (EventDefaults, JsonFormatter, RateLimit, format_problem,
                                 setup_logging)
from tailrabbit.settings import LoggingSettings
from tailrabbit.stats import COUNTERS, Stats

# A value for every field name any event uses: a new field must be added here (and to the
# README's list), which keeps the vocabulary small and shared.
SAMPLE = {
    "input": "web", "path": "/var/log/app.log", "address": "rabbit1:5672",
    "addresses": "rabbit1:5672, rabbit2:5672", "reason": "Connection refused",
    "count": 7, "total": 12, "offset": 4096, "bytes": 2048, "delay": 1.25, "seconds": 30.0,
    "ms": 12.4, "confirms": "on", "copy": "/var/log/app.log.1",
    "original": "/var/log/app.log", "rotated": "/var/log/app.log.1",
    "pattern": "/var/log/*.log", "link": "/var/log/app.log", "target": "/etc/passwd",
    "max_line_bytes": 1048576, "task": "<Greenlet spool replay of web>",
    "what": "checkpoints", "mode": "755", "new_mode": "700", "added": ["a", "b"],
    "removed": [], "changed": ["c"], "connection": "connected to rabbit1:5672",
    "buffered": 3, "buffered_bytes": 300,
    "inputs": ["web:fifo", "api:file"], "buffer": 100000, "buffer_bytes": 268435456,
    "signal": "SIGTERM", "spool_max_bytes": 1073741824, "resumes": True,
    "entry": "{'dev': 'x'}", "position": {"segment": 7, "offset": 99},
    "stacks": "Greenlet <run>\n  File \"publisher/loop.py\", line 1",
    **{name: 1 for name in COUNTERS},
}

# The wording of each call site before it became an event (git show HEAD~ of the
# converted modules), formatted the old way: the events must say the same bytes.
OLD = [
    ("connected", "connected to %s (confirms %s)", ("address", "confirms")),
    ("connect_failed", "cannot connect to %s: %s", ("address", "reason")),
    ("connect_refused", "cannot connect to %s: %s", ("address", "reason")),
    ("no_broker_answered", "no broker answered (%s); retrying in %.1f s",
     ("addresses", "delay")),
    ("no_broker_accepted", "no broker accepted the connection (%s); retrying in %.1f s",
     ("addresses", "delay")),
    ("connection_lost", "connection to %s lost: %s; %d lines to publish again",
     ("address", "reason", "count")),
    ("connection_read_failed", "reading from %s failed: %s", ("address", "reason")),
    ("connection_blocked", "the broker blocked publishing (%s); lines wait in the buffer",
     ("reason",)),
    ("connection_unblocked", "the broker unblocked publishing", ()),
    ("input_parked", "input %s parked: %s; its lines wait (%d unconfirmed lines set aside), "
     "retrying in %.1f s", ("input", "reason", "count", "delay")),
    ("reconnect_for_reload", "reload: %s; reconnecting to apply it", ("reason",)),
    ("planned_reconnect", "planned reconnect (%s) of %s", ("reason", "address")),
    ("planned_reconnect_unconfirmed", "planned reconnect (%s): %d lines still unconfirmed "
     "after %.0f s, they will be published again", ("reason", "count", "seconds")),
    ("lines_dropped", "input %s: buffer full, lines dropped (overflow = drop)", ("input",)),
    ("line_truncated", "input %s: a line longer than max_line_bytes = %d was truncated",
     ("input", "max_line_bytes")),
    ("fifo_created", "input %s: created FIFO %s", ("input", "path")),
    ("fifo_writer_closed", "input %s: writer closed %s; waiting for the next one",
     ("input", "path")),
    ("fifo_cannot_open", "input %s: %s", ("input", "reason")),
    ("file_missing", "input %s: %s does not exist yet; waiting for it", ("input", "path")),
    ("file_rotated", "input %s: %s was rotated or deleted; reading the old file to its end",
     ("input", "path")),
    ("file_rotated_while_stopped", "input %s: %s was rotated to %s while we were stopped; "
     "read it from offset %d", ("input", "path", "rotated", "offset")),
    ("file_shorter_than_checkpoint", "input %s: %s is shorter than its checkpoint; reading "
     "it from the start", ("input", "path")),
    ("file_copytruncated", "input %s: %s was copied and truncated; read its tail from %s",
     ("input", "path", "copy")),
    ("file_truncated", "input %s: %s was truncated; reading it again from the start (lines "
     "written after our last read and before the truncation are lost)", ("input", "path")),
    ("file_copy_assumed", "input %s: %s was truncated; %s, new and starting with the same "
     "bytes, is taken for its copy: its first %d lines are not shipped again (%d such "
     "lines so far)", ("input", "path", "copy", "count", "total")),
    ("file_is_copy", "input %s: %s is a copy of %s (the same %d bytes); its lines are "
     "shipped from %s, not again", ("input", "path", "original", "bytes", "original")),
    ("file_copy_grew", "input %s: %s grew with lines that %s does not have; it is read from "
     "offset %d; its first %d lines (%d bytes) are the same as %s's and are not shipped "
     "again (%d such lines so far)",
     ("input", "path", "original", "offset", "count", "offset", "original", "total")),
    ("file_match_refused", "input %s: %s matches %s but is not read, nor any other match "
     "that is %s", ("input", "path", "pattern", "reason")),
    ("watch_failed", "cannot watch %s (%s); checking it periodically instead",
     ("path", "reason")),
    ("spool_orphaned", "%s holds %d bytes of lines spooled by input %s, which is not in the "
     "config; add [input:%s] back to publish them", ("path", "bytes", "input", "input")),
    ("reload_unconfirmed", "input %s: lines in flight were not confirmed in time; they may "
     "be published twice", ("input",)),
    ("unconfirmed_spooled", "input %s: %d lines not confirmed by the broker were spooled to "
     "%s; they are published first at the next start", ("input", "count", "path")),
    ("unconfirmed_lost", "input %s: %d lines not confirmed by the broker could not be "
     "spooled to %s (%s): they are lost", ("input", "count", "path", "reason")),
    ("stopped_unconfirmed", "stopped with %d lines of log files not confirmed; they are "
     "read again from the checkpoints at the next start", ("count",)),
    ("spool_close_failed", "cannot close the spool of input %s: %s", ("input", "reason")),
    ("save_failed", "cannot save the %s of input %s: %s", ("what", "input", "reason")),
    ("stop_timeout", "%s did not stop within %.0f s; going on without it",
     ("task", "seconds")),
    ("reload_refused", "SIGHUP: %s; keeping the running configuration", ("reason",)),
    ("reload_needs_restart", "SIGHUP: [tailrabbit] and [logging] changes apply at the next "
     "restart", ()),
    ("state_dir_mode_fixed", "state_dir %s was mode %s; made %s (it holds log lines)",
     ("path", "mode", "new_mode")),
    ("metrics_listening", "metrics on http://%s/metrics", ("address",)),
    # daemon.py and cli.py; `reason` of crashed and crash_stop_failed is the error's repr,
    # which the old lines formatted with %r
    ("config_warning", "%s", ("reason",)),
    ("startup_failed", "tailrabbit: %s", ("reason",)),
    ("stopping", "%s: stopping, draining for at most %g s", ("signal", "seconds")),
    ("inputs_finished", "all inputs finished; waiting for the broker to confirm every line",
     ()),
    ("crashed", "%s failed: %s; spooling what is held, then exiting so the supervisor "
     "restarts us", ("task", "reason")),
    ("crash_stop_failed", "while stopping after the failure: %s", ("reason",)),
    ("stopped", "%s", ("reason",)),
    ("exiting", "%s", ("reason",)),
    # spool/
    ("spool_full", "input %s: spool full (spool_max_bytes = %d): lines dropped, see the "
     "dropped counter", ("input", "spool_max_bytes")),
    ("spool_write_failed", "input %s: cannot write to the spool in %s: %s; lines dropped, "
     "see the dropped counter", ("input", "path", "reason")),
    ("spool_truncate_failed", "input %s: cannot truncate the torn batch at byte %d of %s "
     "(%s); replay will skip it", ("input", "offset", "path", "reason")),
    ("spool_segment_remove_failed", "input %s: cannot remove the replayed spool segment "
     "%s: %s", ("input", "path", "reason")),
    ("spool_flush_failed", "input %s: cannot close the spool in %s: %s",
     ("input", "path", "reason")),
    ("spool_batch_skipped", "input %s: spool segment %s: skipped %d bytes at byte %d, a "
     "batch whose write failed and could not be undone (its lines were counted as dropped "
     "then)", ("input", "path", "bytes", "offset")),
    ("spool_segment_unreadable", "input %s: cannot read spool segment %s (%s): skipped its "
     "last %d bytes", ("input", "path", "reason", "bytes")),
    ("spool_replay_pending", "input %s: %d bytes spooled by an earlier run will be "
     "published first", ("input", "bytes")),
    ("spool_not_private", "input %s: cannot make the spool in %s private (0700/0600): %s",
     ("input", "path", "reason")),
    ("spool_position_corrupt", "spool of input %s: position.json is corrupt (%s); "
     "replaying its segments from their start", ("input", "reason")),
    ("spool_position_out_of_range", "spool of input %s: position.json names no byte of "
     "its segments (%r); replaying them from their start", ("input", "position")),
    ("spool_prepend_completed", "input %s: completed a spool prepend interrupted by a "
     "crash", ("input",)),
    ("spool_position_save_failed", "input %s: cannot save the spool position after a stop "
     "(%s); the next start completes it", ("input", "reason")),
    # files/checkpoints.py
    ("checkpoints_symlink_refused", "%s is a symbolic link, not a file tailrabbit wrote; "
     "not read", ("path",)),
    ("checkpoints_unreadable", "%s: cannot read checkpoints (%s)", ("path", "reason")),
    ("checkpoints_corrupt", "%s is corrupt (%s); files of input %s are read again from "
     "their start (duplicates rather than loss)", ("path", "reason", "input")),
    ("checkpoints_not_private", "%s is readable by others and cannot be made private (%s)",
     ("path", "reason")),
]


def sample(event):
    return {name: SAMPLE[name] for name in event.fields}


@pytest.fixture(autouse=True)
def fresh_limits():
    logevents.reset_limits()
    yield
    logevents.reset_limits()


def test_every_event_has_a_name_a_level_and_fields_that_render():
    assert len(logevents.EVENTS) >= 40
    for name, event in logevents.EVENTS.items():
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name) and event.name == name
        assert getattr(logevents, name) is event           # logevents.<name>(...)
        assert event.level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)
        assert isinstance(event.fields, tuple) and len(set(event.fields)) == len(event.fields)
        missing = set(event.fields) - set(SAMPLE)
        assert not missing, f"{name}: add {missing} to SAMPLE (and the README's list)"
        text = event.render(sample(event))
        assert text and not re.search(r"\{[a-z_]+(![rsa])?(:[^}]*)?\}", text), \
            f"{name} left a field unfilled: {text}"
        if "input" in event.fields:
            assert "web" in text, f"{name} does not say which input"


@pytest.mark.parametrize("name, old_format, old_fields", OLD, ids=[row[0] for row in OLD])
def test_the_text_is_the_wording_of_before(name, old_format, old_fields):
    fields = sample(logevents.EVENTS[name])
    assert logevents.EVENTS[name].render(fields) == old_format % tuple(
        SAMPLE[field] for field in old_fields)


def test_the_events_with_texts_of_their_own_say_what_they_said():
    symlink = logevents.file_symlink_skipped
    fields = {"input": "web", "path": "/l/a.log", "pattern": "/l/*.log", "target": "/etc/x"}
    assert symlink.render({**fields, "link": "/l/a.log"}) == (
        "input web: /l/a.log matches /l/*.log but is a symbolic link to /etc/x; not read "
        "(follow_symlinks = True reads links)")
    assert symlink.render({**fields, "link": "/l"}) == (
        "input web: /l/a.log matches /l/*.log but is a symbolic link (under /l) to /etc/x; "
        "not read (follow_symlinks = True reads links)")
    assert logevents.reloaded.render(sample(logevents.reloaded)) == (
        "SIGHUP: configuration reloaded in 12 ms: added a, b, removed none, changed c")
    # the old lines, formatted from the values their call sites had
    items = [("web", "fifo"), ("api", "file")]
    assert logevents.started.render({**sample(logevents.started), "count": 2}) == (
        "tailrabbit started: %d inputs (%s), buffer %d lines or %d bytes"
        % (2, ", ".join(f"{name}:{kind}" for name, kind in items), 100000, 268435456))
    assert logevents.drain_cut_short.render({"signal": "SIGINT"}) == (
        "SIG%s while draining: stopping now" % "INT")
    damaged = "input %s: spool segment %s is damaged at byte %d (%s): skipped %d bytes, " \
              "%d lines (counted as dropped)%s"
    fields = {"input": "web", "path": "/s/1.seg", "offset": 9, "reason": "bad header",
              "bytes": 12, "count": 3}
    for resumes, tail in ((True, "; replay resumes after them"), (False, "")):
        assert logevents.spool_segment_damaged.render({**fields, "resumes": resumes}) == (
            damaged % ("web", "/s/1.seg", 9, "bad header", 12, 3, tail))
    assert logevents.spool_partial_write_removed.render(
        {"input": "web", "path": "/s/spool/web/7.seg.new"}) == (
        "input %s: removed %s, an unfinished spool write of an earlier run"
        % ("web", "7.seg.new"))
    entry = {"dev": "x" * 500}
    assert logevents.checkpoint_entry_malformed.render(
        {"path": "/s/c.json", "entry": repr(entry)[:200]}) == (
        "%s: skipping a malformed checkpoint entry: %.200r; its file is read again from "
        "the start" % ("/s/c.json", entry))


def test_the_stats_event_carries_every_counter_in_the_old_line_order(caplog):
    stats = Stats(["web"])
    stats.of("web").read = 5
    stats.connection_state = "connected to r:5672"
    with caplog.at_level(logging.INFO):
        stats.log(lambda name: 2, lambda name: 20)
    [record] = caplog.records
    figures = " ".join(f"{key}={5 if key == 'read' else 0}" for key in COUNTERS)
    assert record.getMessage() == (f"stats input=web {figures} buffered=2 buffered_bytes=20 "
                                   f"connection=connected to r:5672")
    assert record.event == "stats" and record.fields["read"] == 5
    assert list(record.fields) == list(logevents.stats.fields)
    assert set(logevents.stats.fields) == {"input", *COUNTERS, "buffered", "buffered_bytes",
                                           "connection"}


def test_an_event_logs_its_name_and_fields_on_the_record_at_the_call_site(caplog):
    with caplog.at_level(logging.INFO):
        line = sys._getframe().f_lineno + 1
        logevents.file_rotated(input="web", path="/l/a.log")
    [record] = caplog.records
    assert (record.name, record.levelno) == ("tailrabbit.input", logging.INFO)
    assert record.event == "file_rotated"
    assert record.fields == {"input": "web", "path": "/l/a.log"}
    assert (record.filename, record.lineno) == ("test_logevents.py", line)


def test_fields_are_checked_against_the_declaration():
    with pytest.raises(TypeError, match="file_rotated takes fields"):
        logevents.file_rotated(input="web", pth="/l/a.log")
    with pytest.raises(TypeError):
        logevents.file_rotated(input="web")
    with pytest.raises(ValueError, match="reserved"):
        Event("not_registered", logging.INFO, "x {message}", "message")
    with pytest.raises(ValueError, match="declared twice"):
        Event("file_rotated", logging.INFO, "again")
    assert "not_registered" not in logevents.EVENTS


def json_lines(emit, level=logging.DEBUG):
    """What the JSON style writes for the records `emit()` logs, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(EventDefaults())
    root = logging.getLogger()
    old_level, root.level = root.level, level
    # ours alone: pytest's capture handlers would put the records in the test report, and
    # pytest-xdist cannot send a report with a non-UTF-8 path (a surrogate) to its master
    others, root.handlers = root.handlers, [handler]
    try:
        emit()
    finally:
        root.handlers = others
        root.level = old_level
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_json_style_writes_one_object_per_line_with_name_and_fields():
    def emit():
        logevents.connection_lost(address="r1:5672", reason="timed out\nreally", count=3)
        logevents.reloaded(ms=3.0, added=["a"], removed=[], changed=[])
        logging.getLogger("amqp").warning("a library's %s", "line")
    lost, reloaded, library = json_lines(emit)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", lost["ts"])
    assert lost == {"ts": lost["ts"], "level": "WARNING", "event": "connection_lost",
                    "message": "connection to r1:5672 lost: timed out\nreally; 3 lines to "
                               "publish again",
                    "address": "r1:5672", "reason": "timed out\nreally", "count": 3}
    assert reloaded["added"] == ["a"] and reloaded["event"] == "reloaded"
    assert (library["event"], library["logger"], library["message"]) == (
        "log", "amqp", "a library's line")


def test_json_survives_tracebacks_and_paths_that_are_not_utf8():
    def emit():
        logevents.file_missing(input="web", path="/l/\udcff.log")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("tailrabbit").exception("crashed")
    missing, crash = json_lines(emit)
    assert missing["path"] == "/l/\udcff.log"
    assert crash["event"] == "log" and "RuntimeError: boom" in crash["exception"]


def test_rate_limited_events_log_once_then_a_summary_per_interval(caplog, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(RateLimit, "clock", staticmethod(lambda: now[0]))
    cannot = logevents.fifo_cannot_open
    with caplog.at_level(logging.ERROR):
        for second in (0, 5, 6, 9):              # retried every 5 s, and more
            now[0] = 1000.0 + second
            cannot(input="a", path="/p", reason="cannot open FIFO /p: Permission denied")
        cannot(input="b", path="/q", reason="cannot open FIFO /q: Permission denied")
        now[0] = 1010.5
        cannot(input="a", path="/p", reason="cannot open FIFO /p: Permission denied")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["input a: cannot open FIFO /p: Permission denied",
                        "input b: cannot open FIFO /q: Permission denied",
                        "input a: cannot open FIFO /p: Permission denied (3 more since the "
                        "last warning)"]
    assert caplog.records[2].fields["suppressed"] == 3
    assert "suppressed" not in caplog.records[0].fields


def test_save_failures_are_limited_per_input_and_what(caplog):
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            logevents.save_failed(input="a", what="checkpoints", reason="Read-only")
            logevents.save_failed(input="a", what="spool position", reason="Read-only")
    assert len(caplog.records) == 2


def test_spool_write_failures_are_limited_per_input_and_directory(caplog):
    """As the per-Spool limits they replace: another state_dir's spool counts apart."""
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            logevents.spool_full(input="a", path="/s1/spool/a", spool_max_bytes=10)
            logevents.spool_write_failed(input="a", path="/s1/spool/a", reason="Read-only")
        logevents.spool_full(input="a", path="/s2/spool/a", spool_max_bytes=10)
        logevents.spool_full(input="b", path="/s1/spool/b", spool_max_bytes=10)
    assert [(r.event, r.fields["input"], r.fields["path"]) for r in caplog.records] == [
        ("spool_full", "a", "/s1/spool/a"), ("spool_write_failed", "a", "/s1/spool/a"),
        ("spool_full", "a", "/s2/spool/a"), ("spool_full", "b", "/s1/spool/b")]


def test_a_level_that_is_off_costs_nothing_and_suppresses_nothing(caplog):
    with caplog.at_level(logging.ERROR):
        logevents.lines_dropped(input="a")            # a WARNING: not logged
    with caplog.at_level(logging.WARNING):
        logevents.lines_dropped(input="a")
    assert [r.getMessage() for r in caplog.records] == [
        "input a: buffer full, lines dropped (overflow = drop)"]


def logging_section(tmp_path, text):
    parser = configparser.ConfigParser()
    parser.read_string("[logging]\n" + text)
    return Section(str(tmp_path / "c.ini"), parser, "logging")


def test_style_is_text_by_default_json_on_request_and_else_refused(tmp_path):
    assert logging_settings(logging_section(tmp_path, "")).style == "text"
    assert logging_settings(logging_section(tmp_path, "style = JSON\n")).style == "json"
    with pytest.raises(ConfigError) as refused:
        logging_settings(logging_section(tmp_path, "style = xml\n"))
    assert (refused.value.section, refused.value.key) == ("logging", "style")
    assert str(refused.value).endswith("[logging] style: must be one of text, json, got 'xml'")


def test_a_text_format_may_name_the_event(tmp_path, capsys):
    log_format = "%(levelname)s %(event)s %(message)s"
    assert format_problem(log_format, None) is None
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging(LoggingSettings(format=log_format), "INFO")
        logevents.fifo_created(input="a", path="/p")
        logging.getLogger("tailrabbit").info("not an event yet")
    finally:
        root.handlers[:], root.level = saved
    assert capsys.readouterr().err.splitlines() == [
        "INFO fifo_created input a: created FIFO /p", "INFO log not an event yet"]
