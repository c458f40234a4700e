"""Logs go to stderr (supervisord and systemd capture them) in the [logging] format;
repeated warnings are rate-limited so a long outage cannot flood them."""

import logging
import sys
import time

WARN_EVERY = 10.0       # seconds between repeated warnings of one kind


def setup_logging(logging_settings, level):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(logging_settings.format, logging_settings.datefmt))
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
