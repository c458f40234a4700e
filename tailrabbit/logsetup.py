"""Logs go to stderr (supervisord and systemd capture them) in the [logging] format."""

import logging
import sys


def setup_logging(logging_settings, level):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(logging_settings.format, logging_settings.datefmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(int(level) if str(level).isdigit() else level)
    logging.getLogger("amqp").setLevel(max(root.level, logging.WARNING))
    logging.getLogger("watchdog").setLevel(max(root.level, logging.WARNING))
