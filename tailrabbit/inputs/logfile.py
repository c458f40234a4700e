"""file: follow a log file across rotation, waking on watchdog events.

The path is stat'ed on every wake-up and at least every STAT_INTERVAL seconds (the safety
net for missed events). When the path names another file than the one open (rename +
create), the old file is read to its end and kept for `rotate_wait` seconds after it last
grew, for writers still holding it; then its unterminated tail is published and the new
file is read from its first byte. A file smaller than what was read was truncated: it is
read again from 0, with a WARNING.
"""

import logging
import os
import time

from gevent.event import Event

from tailrabbit.files.tailer import FileTailer
from tailrabbit.inputs.base import Input

log = logging.getLogger("tailrabbit.input")

STAT_INTERVAL = 1.0


def identity_of(fd):
    st = os.fstat(fd)
    return f"{st.st_dev}:{st.st_ino}"


def path_identity(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


class FileInput(Input):
    kind = "file"

    def __init__(self, settings, buffer, stats, spool=None, watcher=None):
        super().__init__(settings, buffer, stats, spool)
        self.watcher = watcher
        self._wake = Event()
        self._current = None         # the tailer of the file the path names
        self._rotated = []           # tailers of files renamed away, still being drained
        self._first_start = True
        self._warned_missing = False

    def run(self):
        directory = os.path.dirname(os.path.abspath(self.settings.path))
        if self.watcher is not None:
            self.watcher.watch(directory, self._wake.set)
        try:
            while True:
                self._wake.clear()
                if self.watcher is not None:
                    self.watcher.ensure(directory)
                self.poll(time.monotonic())
                self._wake.wait(STAT_INTERVAL)
        finally:
            if self.watcher is not None:
                self.watcher.unwatch(directory, self._wake.set)
            for tailer in self._rotated + [self._current]:
                if tailer is not None:
                    tailer.close()

    def _start_offset(self, identity, size):
        if self._first_start and self.settings.start_at == "end":
            return size
        return 0

    def poll(self, now):
        path = self.settings.path
        if self._current is None:
            self._current = FileTailer.open(self, path, identity_of, self._start_offset)
            self._first_start = False
            if self._current is None:
                if not self._warned_missing:
                    log.warning("input %s: %s does not exist yet; waiting for it",
                                self.name, path)
                    self._warned_missing = True
            else:
                self._warned_missing = False
                self._current.last_growth = now
        for tailer in list(self._rotated):
            if not tailer.read(now) and now - tailer.last_growth >= self.settings.rotate_wait:
                tailer.finish()
                self._rotated.remove(tailer)
        current = self._current
        if current is None:
            return
        if current.size() < current.read_pos:
            log.warning("input %s: %s was truncated; reading it again from the start",
                        self.name, path)
            current.restart_at(0)
        current.read(now)
        if path_identity(path) != current.identity:
            # Renamed away or deleted: drain it, then follow the path to its new file.
            self._rotated.append(current)
            self._current = None
            self._wake.set()
