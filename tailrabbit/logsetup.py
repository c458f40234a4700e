"""Logs go to stderr (supervisord and systemd capture them), in the [logging] format
(`style = text`) or as one JSON object per line (`style = json`, for journald, Loki,
Elasticsearch); repeated warnings are rate-limited so a long outage cannot flood them.

Named events (logevents/) attach their name and fields to each LogRecord (`event`,
`fields`); records that are not events yet (a library's, or a call site not converted)
are the generic event `log`. Both styles see every record: the text style keeps the
operator's format, where `%(event)s` may name the event.
"""

import json
import logging
import sys
import time

WARN_EVERY = 10.0       # seconds between repeated warnings of one kind
GENERIC_EVENT = "log"   # the event name of a record that is not a named event
STYLES = ("text", "json")


def make_formatter(log_format, datefmt):
    return logging.Formatter(log_format, datefmt)


def format_problem(log_format, datefmt):
    """None, or why `log_format`/`datefmt` cannot format a record (checked at load).

    Python checks a format when the Formatter is built (`plain text` has no field: a
    ValueError, which was exit 1), but an unknown field (`%(nosuchfield)s`) or a wrong
    conversion (`%(message)d`) only fails when a record is formatted: logging then prints a
    traceback instead of every log line. So one record like ours is formatted here, its
    time too (the datefmt is used only where the format has %(asctime)s)."""
    record = logging.LogRecord("tailrabbit", logging.WARNING, __file__, 1,
                               "input %s: %d lines", ("web", 3), None)
    EventDefaults().filter(record)          # as the handler does: %(event)s is a field
    try:
        formatter = make_formatter(log_format, datefmt)
        formatter.format(record)
        formatter.formatTime(record, datefmt)
    except KeyError as error:
        return f"no field {error.args[0]!r}"
    except Exception as error:     # ValueError, TypeError, ...: each is a refusal
        return str(error)
    return None


class EventDefaults(logging.Filter):
    """Every record reaching the handler has `event` and `fields`: a text format that
    names %(event)s must not fail on a library's record."""

    def filter(self, record):
        if not hasattr(record, "event"):
            record.event = GENERIC_EVENT
            record.fields = {}
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601, UTC, milliseconds), level, event, message,
    then the event's fields at the top level (logevents refuses fields with these names).
    A generic record names its logger instead; a traceback is one string. ASCII only:
    a path that is not UTF-8 (surrogate escapes) still makes valid JSON."""

    def format(self, record):
        out = {"ts": iso_utc(record.created), "level": record.levelname,
               "event": getattr(record, "event", GENERIC_EVENT),
               "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        elif out["event"] == GENERIC_EVENT:
            out["logger"] = record.name
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str)


def iso_utc(created):
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def setup_logging(logging_settings, level):
    handler = logging.StreamHandler(sys.stderr)
    if logging_settings.style == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(make_formatter(logging_settings.format,
                                            logging_settings.datefmt))
    handler.addFilter(EventDefaults())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(int(level) if str(level).isdigit() else level)
    logging.getLogger("amqp").setLevel(max(root.level, logging.WARNING))
    logging.getLogger("watchdog").setLevel(max(root.level, logging.WARNING))


class RateLimit:
    """The first occurrence passes at once, then at most one per `every` seconds, which
    learns how many were suppressed in between."""

    clock = staticmethod(time.monotonic)     # tests replace it

    def __init__(self, every=WARN_EVERY):
        self.every = every
        self._last = None
        self._suppressed = 0

    def passes(self):
        """None when this occurrence is suppressed, else how many were since the last."""
        now = self.clock()
        if self._last is not None and now - self._last < self.every:
            self._suppressed += 1
            return None
        suppressed, self._last, self._suppressed = self._suppressed, now, 0
        return suppressed


def suppressed_suffix(count):
    return f" ({count} more since the last warning)" if count else ""
