"""The bridge from watchdog's observer thread into the gevent hub.

watchdog's inotify observer blocks in os.read/poll in its own OS thread; under gevent that
thread must stay a real thread (we monkey-patch sockets only), and its events must cross
into the hub thread-safely: `loop.run_callback_threadsafe`. Events are hints ("something
changed in this directory"); the file inputs then stat and read for themselves, and a slow
periodic check covers events that never come (NFS, a directory created later).
"""

import logging
import os
from collections import defaultdict

import gevent
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from tailrabbit import logevents

# watchdog's inotify emitter logs this at ERROR when it is stopped while its thread is
# between "am I running?" and reading the next event: a race inside watchdog (7.x) on
# every unschedule or stop, not a failure. No stop order avoids it (the emitter checks,
# then blocks in read; stop() clears its state from our thread), so that one record is
# dropped; every other watchdog message passes.
SPURIOUS_STOP_ERROR = "InotifyEmitter.queue_events() called when the thread is inactive"


class _DropSpuriousStopError(logging.Filter):
    def filter(self, record):
        return record.msg != SPURIOUS_STOP_ERROR


_inotify_log = logging.getLogger("watchdog.observers.inotify")
if not any(isinstance(f, _DropSpuriousStopError) for f in _inotify_log.filters):
    _inotify_log.addFilter(_DropSpuriousStopError())

JOIN_TIMEOUT = 5.0


class _Forward(FileSystemEventHandler):
    """Posts at most one wake-up at a time per directory: a busy log makes thousands of
    modify events a second, and the reader only needs to know "read again"."""

    def __init__(self, loop, dispatch, directory):
        self._loop, self._dispatch, self._directory = loop, dispatch, directory
        self.pending = False

    def on_any_event(self, event):          # runs in the observer thread
        if not self.pending:
            self.pending = True
            self._loop.run_callback_threadsafe(self._deliver)

    def _deliver(self):                     # runs in the hub
        self.pending = False
        self._dispatch(self._directory)


class DirectoryWatcher:
    """One observer thread for the process; `watch(dir, callback)` calls back in the hub."""

    def __init__(self):
        self._observer = None
        self._callbacks = defaultdict(list)
        self._watches = {}

    def watch(self, directory, callback):
        directory = os.path.abspath(directory)
        self._callbacks[directory].append(callback)
        self._schedule(directory)

    def unwatch(self, directory, callback):
        directory = os.path.abspath(directory)
        callbacks = self._callbacks.get(directory, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks and directory in self._watches:
            watch = self._watches.pop(directory)
            if self._observer is not None:
                self._observer.unschedule(watch)    # stops and joins its emitter

    def ensure(self, directory):
        """Schedule a watch that failed before (the directory did not exist yet)."""
        self._schedule(os.path.abspath(directory))

    def _schedule(self, directory):
        if directory in self._watches or not os.path.isdir(directory):
            return
        if self._observer is None:
            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        handler = _Forward(gevent.get_hub().loop, self._dispatch, directory)
        try:
            self._watches[directory] = self._observer.schedule(handler, directory,
                                                               recursive=False)
        except OSError as error:
            logevents.watch_failed(path=directory, reason=str(error))

    def _dispatch(self, directory):
        for callback in list(self._callbacks.get(directory, ())):
            callback()

    def stop(self):
        """Stop the observer: its emitters are stopped and joined, then its thread."""
        observer, self._observer = self._observer, None
        self._watches.clear()
        if observer is not None:
            observer.stop()
            observer.join(JOIN_TIMEOUT)
