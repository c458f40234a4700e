"""file: follow a log file, or every file a glob matches, across rotation and restarts.

Each poll (on a watchdog hint, and at least every STAT_INTERVAL seconds as the safety net):
  - files renamed away or deleted keep being read through their open descriptor, until
    `rotate_wait` seconds after they last grew (writers that still hold them); then their
    unterminated tail is published and they are closed (rename + create, delete);
  - a file smaller than what was read was truncated: the unread tail is taken from its
    rotated copy if one is found by identity (copytruncate), else a WARNING; then it is
    read again from 0;
  - new matches are opened: at their checkpoint if one matches their identity, else from
    0 (or from their end when start_at = end on the very first start); a match that is a
    copy of a file already shipped (same first bytes, other inode) is never shipped again.
At start, files that a checkpoint names but that were rotated while tailrabbit was down
are found among the rotated names and read from their checkpoint first.
"""

import glob
import logging
import os
import time

from gevent.event import Event

from tailrabbit.files.checkpoints import CheckpointStore
from tailrabbit.files.identity import FINGERPRINT_BYTES, identify, same_content_start
from tailrabbit.files.rotated import open_rotated
from tailrabbit.files.tailer import FileTailer
from tailrabbit.inputs.base import Input

log = logging.getLogger("tailrabbit.input")

STAT_INTERVAL = 1.0
COPY_SETTLE = 2.0            # seconds a short new match must not grow to be judged


class FileInput(Input):
    kind = "file"

    def __init__(self, settings, buffer, stats, state_dir, watcher=None):
        # No spool: a log file keeps its lines itself; overflow = spool acts as block.
        super().__init__(settings, buffer, stats, None)
        self.watcher = watcher
        self.pattern = settings.path
        self.is_glob = glob.has_magic(self.pattern)
        self.store = CheckpointStore(state_dir, settings.name)
        self._wake = Event()
        self._tailers = {}           # path -> FileTailer of the file that path names now
        self._draining = []          # tailers of files renamed away or deleted
        self._first_start = True
        self._warned_missing = False
        self._undecided = {}         # path -> (size, since) of a match too short to judge

    # ---- the greenlet ----------------------------------------------------------------

    def run(self):
        directory = os.path.dirname(self.pattern)
        self._first_start = not self.store.load()
        watch = self.watcher is not None and not glob.has_magic(directory)
        if watch:
            self.watcher.watch(directory, self._wake.set)
        try:
            self._recover_rotated(time.monotonic())
            while True:
                self._wake.clear()
                if watch:
                    self.watcher.ensure(directory)
                self.poll(time.monotonic())
                self._first_start = False
                self._wake.wait(STAT_INTERVAL)
        finally:
            if watch:
                self.watcher.unwatch(directory, self._wake.set)
            self.close()

    def close(self):
        """Close every file. A deleted file's unterminated last line is published now: no
        restart could find it again (a renamed one is resumed from its checkpoint)."""
        for tailer in self._draining:
            if tailer.fd is not None and os.fstat(tailer.fd).st_nlink == 0:
                tailer.flush()
        for tailer in self._draining + list(self._tailers.values()):
            tailer.close()
        self._draining, self._tailers = [], {}

    def save_checkpoints(self):
        self.store.save()

    # ---- one poll --------------------------------------------------------------------

    def poll(self, now):
        for tailer in list(self._draining):
            if not tailer.read(now) and now - tailer.last_growth >= self.settings.rotate_wait:
                tailer.finish()
                self._draining.remove(tailer)
        paths = self._matches()
        for path, tailer in list(self._tailers.items()):
            if path not in paths or paths[path] != tailer.inode:
                self._rotated_away(path, tailer, now)
        for path in paths:
            if path not in self._tailers:
                self._open(path, now)
        for tailer in self._tailers.values():
            self._read_current(tailer, now)
            record = tailer.record
            record.seen = time.time()
            if record.identity.length < min(FINGERPRINT_BYTES, tailer.read_pos):
                record.identity = identify(tailer.fd)     # a short file grew: fingerprint more

    def _matches(self):
        """path -> (dev, ino) of every regular file the pattern names now."""
        paths = sorted(glob.glob(self.pattern)) if self.is_glob else [self.pattern]
        found = {}
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                continue
            if os.path.isfile(path):
                found[path] = (st.st_dev, st.st_ino)
        if not found and not self._warned_missing and not self._tailers:
            log.warning("input %s: %s does not exist yet; waiting for it", self.name,
                        self.pattern)
            self._warned_missing = True
        return found

    def _rotated_away(self, path, tailer, now):
        """The path names another file now (or none): drain the old one to its end."""
        del self._tailers[path]
        self._read_current(tailer, now)      # what it holds comes before the new file
        self._draining.append(tailer)
        self._wake.set()
        log.info("input %s: %s was rotated or deleted; reading the old file to its end",
                 self.name, path)

    def _open(self, path, now):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        identity = identify(fd)
        for tailer in self._draining:          # a rotated file renamed into the glob
            if tailer.inode == identity.inode:
                os.close(fd)
                return
        record = self.store.find(fd, identity)
        size = os.fstat(fd).st_size
        verdict = "new" if record is not None or self._first_start else \
            self._copy_verdict(path, fd, identity, size, now)
        if verdict == "wait":
            os.close(fd)
            return
        self._undecided.pop(path, None)
        if verdict == "copy":
            # Shipped already through the original: follow it from its end.
            record = self.store.add(identity, path, size)
            log.info("input %s: %s is a rotated copy of a file already shipped; only lines "
                     "added to it later are shipped", self.name, path)
        if record is None:
            offset = size if self._first_start and self.settings.start_at == "end" else 0
            record = self.store.add(identity, path, offset)
        elif record.offset > size:
            log.warning("input %s: %s is shorter than its checkpoint; reading it from the "
                        "start", self.name, path)
            record.restart(0)
        record.path = path
        tailer = FileTailer(self, path, fd, record, record.offset)
        tailer.last_growth = now
        self._tailers[path] = tailer
        self._warned_missing = False

    def _copy_verdict(self, path, fd, identity, size, now):
        """Is a new match a copy of a file already tracked ("copy"), a new file ("new"),
        or too short to tell yet ("wait")?

        A copy has another inode and the same first bytes. While a new file is shorter
        than the fingerprint and its bytes so far are the start of a tracked file (cp may
        still be writing it; an empty file starts every file), it waits: until it has
        FINGERPRINT_BYTES, or has not grown for COPY_SETTLE seconds.
        """
        head = os.pread(fd, FINGERPRINT_BYTES, 0)
        if len(head) == FINGERPRINT_BYTES and any(
                r.identity.fingerprint == identity.fingerprint
                and r.identity.length == identity.length and r.identity.inode != identity.inode
                for r in self.store.records.values()):
            return "copy"
        tracked = [t for t in list(self._tailers.values()) + self._draining
                   if t.fd is not None and t.inode != identity.inode]
        if not any(os.pread(t.fd, len(head), 0) == head for t in tracked):
            return "new"
        if len(head) == FINGERPRINT_BYTES:
            return "copy"
        last_size, since = self._undecided.get(path, (None, now))
        if last_size != size:
            self._undecided[path] = (size, now)
            return "wait"
        if now - since < COPY_SETTLE:
            return "wait"
        return "copy" if head else "new"

    def _read_current(self, tailer, now):
        if (tailer.size() < tailer.read_pos
                or not same_content_start(tailer.fd, tailer.record.identity)):
            self._truncated(tailer, now)     # shorter, or rewritten past our offset
        tailer.read(now)

    def _truncated(self, tailer, now):
        """copytruncate (the tail is in the copy) or truncation in place: restart at 0."""
        record = tailer.record
        name, fd = open_rotated(tailer.path, record.identity, tailer.read_pos,
                                same_inode=False)
        if fd is not None:
            # The unread tail, from the copy, under a checkpoint of the copy's own: a crash
            # before it is confirmed resumes there, not in the truncated file.
            self._drain_copy(name, fd, tailer.splitter.offset, now)
            log.info("input %s: %s was copied and truncated; read its tail from %s",
                     self.name, tailer.path, name)
        else:
            log.warning("input %s: %s was truncated; reading it again from the start "
                        "(lines written after our last read and before the truncation "
                        "are lost)", self.name, tailer.path)
            tailer.flush()
        tailer.restart_at(0)
        record.restart(0)
        record.identity = identify(tailer.fd)

    def _drain_copy(self, name, fd, offset, now):
        """Read a copytruncate copy from `offset` to its end; it is never read again."""
        copy_record = self.store.add(identify(fd), name, offset)
        copy = FileTailer(self, name, fd, copy_record, offset)
        copy.read(now)
        copy.finish()

    def _recover_rotated(self, now):
        """Files rotated while we were down: read them from their checkpoint first."""
        for record in list(self.store.records.values()):
            # A record of a file that was empty has no fingerprint: any file reusing its
            # inode would pass for it, so it cannot be looked for.
            if _still_at(record) or not record.identity.length:
                continue
            name, fd = open_rotated(record.path, record.identity, record.offset + 1,
                                    same_inode=True)
            if fd is not None:                    # renamed: the same file, resume in it
                tailer = FileTailer(self, name, fd, record, record.offset)
                tailer.last_growth = now
                self._draining.append(tailer)
            else:
                name, fd = open_rotated(record.path, record.identity, record.offset + 1,
                                        same_inode=False)
                if fd is not None:                # copied: its tail is in the copy
                    self.store.forget(record)     # its inode holds other content now
                    self._drain_copy(name, fd, record.offset, now)
            if fd is not None:
                log.info("input %s: %s was rotated to %s while we were stopped; read it "
                         "from offset %d", self.name, record.path, name, record.offset)


def _still_at(record):
    """The file of `record` is still at its path, with its content, not shorter."""
    try:
        fd = os.open(record.path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        return ((st.st_dev, st.st_ino) == record.identity.inode
                and st.st_size >= record.offset
                and same_content_start(fd, record.identity))
    finally:
        os.close(fd)
