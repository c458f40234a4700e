"""The typed, frozen settings a config file becomes (built by config.load), and their
defaults. Plain data: everything else reads these, nothing here reads files."""

import os
import pwd
from dataclasses import dataclass, field
from typing import Optional, Tuple

DEFAULT_BUFFER = 100000
DEFAULT_BUFFER_BYTES = 256 << 20   # the memory buffer's second bound: full at either
INPUT_TYPES = ("fifo", "stdin", "file")
OVERFLOW_POLICIES = ("spool", "block", "drop")
DEFAULT_OVERFLOW = {"fifo": "spool", "stdin": "block", "file": "block"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
HOST_ORDERS = ("ordered", "shuffle")
HEADER_NAMES = ("input", "host", "path", "offset")   # `headers =`: metadata a message may carry
COMPRESSIONS = ("none", "gzip")
MULTILINE_PRESETS = ("python", "java")
# x-queue-type values the broker keeps only durable and never auto-deletes
REPLICATED_QUEUE_TYPES = ("quorum", "stream")


@dataclass(frozen=True)
class ProcessSettings:
    state_dir: str
    buffer: int = DEFAULT_BUFFER
    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    stats_interval: float = 60.0
    shutdown_timeout: float = 10.0
    spool_max_bytes: int = 1 << 30
    metrics: Optional[Tuple[str, int]] = None


@dataclass(frozen=True)
class BrokerSettings:
    hosts: Tuple[Tuple[str, int], ...] = (("localhost", 5672),)
    vhost: str = "/"
    user: str = "guest"
    password: str = field(default="guest", repr=False)
    heartbeat: int = 30
    connect_timeout: float = 5.0
    refresh: Optional[float] = 50.0
    confirm: bool = True
    ssl: bool = False
    ssl_ca: Optional[str] = None
    ssl_cert: Optional[str] = None
    ssl_key: Optional[str] = None
    ssl_verify: bool = True
    host_order: str = "ordered"        # ordered | shuffle (each process its own order)


@dataclass(frozen=True)
class InputSettings:
    name: str
    type: str
    path: Optional[str]
    queue: str
    durable: bool = True
    auto_delete: bool = False
    delivery_mode: int = 2
    exchange: str = ""
    routing_key: str = ""
    arguments: Tuple[Tuple[str, object], ...] = ()
    start_at: str = "end"
    max_line_bytes: int = 1 << 20
    overflow: str = "block"
    rotate_wait: float = 5.0
    follow_symlinks: bool = False      # file globs: open matches that are links
    headers: Tuple[str, ...] = HEADER_NAMES   # metadata headers sent (those that apply)
    batch_lines: int = 1               # lines per message at most (1: a message per line)
    batch_bytes: int = 1 << 20         # body bytes per batched message at most
    compress: str = "none"             # none | gzip
    multiline_start: Optional[str] = None   # a regex: a matching line starts an event
    multiline: Optional[str] = None    # python | java: presets that know tracebacks
    multiline_max_lines: int = 500     # longer events are cut into events
    multiline_timeout: float = 1.0     # a held event is published after this quiet time
    include: Optional[str] = None      # regex: only matching lines (events) are published
    exclude: Optional[str] = None      # regex: matching lines (events) are not

    @property
    def joins_lines(self):
        return self.multiline_start is not None or self.multiline is not None

    @property
    def queue_arguments(self):
        return dict(self.arguments)


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    format: str = "%(asctime)s - %(levelname)s - %(message)s"
    datefmt: str = "%m/%d/%Y %I:%M:%S %p"
    style: str = "text"         # text (format, datefmt) | json (one object per line)


@dataclass(frozen=True)
class Settings:
    path: str
    process: ProcessSettings
    broker: BrokerSettings
    inputs: Tuple[InputSettings, ...]
    logging: LoggingSettings
    warnings: Tuple[str, ...] = ()     # logged once logging is set up


def default_state_dir():
    """A per-user state dir: $XDG_STATE_HOME/tailrabbit, or /var/lib/tailrabbit for root."""
    if os.geteuid() == 0:
        return "/var/lib/tailrabbit"
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        pwd.getpwuid(os.geteuid()).pw_dir, ".local", "state")
    return os.path.join(base, "tailrabbit")
