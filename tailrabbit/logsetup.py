"""Logs go to stderr (supervisord and systemd capture them) in the [logging] format;
repeated warnings are rate-limited so a long outage cannot flood them."""

import logging
import sys
import time

WARN_EVERY = 10.0       # seconds between repeated warnings of one kind


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
    try:
        formatter = make_formatter(log_format, datefmt)
        formatter.format(record)
        formatter.formatTime(record, datefmt)
    except KeyError as error:
        return f"no field {error.args[0]!r}"
    except Exception as error:     # ValueError, TypeError, ...: each is a refusal
        return str(error)
    return None


def setup_logging(logging_settings, level):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(logging_settings.format, logging_settings.datefmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(int(level) if str(level).isdigit() else level)
    logging.getLogger("amqp").setLevel(max(root.level, logging.WARNING))
    logging.getLogger("watchdog").setLevel(max(root.level, logging.WARNING))


class RateLimitedLog:
    """Log the first occurrence at once, then at most one summary per WARN_EVERY."""

    def __init__(self, logger, message, level=logging.WARNING):
        self.logger, self.message, self.level = logger, message, level
        self._last = 0.0
        self._suppressed = 0

    def __call__(self, *args):
        now = time.monotonic()
        if now - self._last < WARN_EVERY:
            self._suppressed += 1
            return
        suffix = f" ({self._suppressed} more since the last warning)" if self._suppressed else ""
        self.logger.log(self.level, self.message + suffix, *args)
        self._last, self._suppressed = now, 0
