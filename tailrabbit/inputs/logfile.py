"""file: follow a log file, or every file a glob matches, across rotation and restarts.

Each poll (on a watchdog hint, and at least every STAT_INTERVAL seconds as the safety net):
  - files renamed away or deleted keep being read through their open descriptor, until
    `rotate_wait` seconds after they last grew (writers that still hold them); then their
    unterminated tail is published and they are closed (rename + create, delete); the
    new file at their path is read after them: while one of them ends in a line without
    its "\n", the new file's lines wait for it (file_rotation.py);
  - a file smaller than what was read was truncated: the unread tail is taken from its
    rotated copy if one is found by identity (copytruncate), else a WARNING; then it is
    read again from 0;
  - new matches are opened: at their checkpoint if one matches their identity, else from
    0 (or from their end when start_at = end on the very first start); a match that is a
    copy of a file being tailed (a rotated name of it, with its bytes) is not read while
    it stays a copy (files/copies.py). Truncations are handled before new matches are
    judged, so a copytruncate copy is first the source of the original's unread tail.
  - never opened (files/matches.py): glob matches that are symbolic links (unless
    follow_symlinks), compressed matches and matches under state_dir, with a WARNING;
    every open, rotated copies included, goes through no link we may not follow.
At start, files that a checkpoint names but that were rotated while tailrabbit was down
are found among the rotated names and read from their checkpoint first. The first start
is recorded once its first poll ran (the state file is written even with no record).
Rotation, truncation and copytruncate handling: file_rotation.py.
"""

import glob
import os
import time

from gevent.event import Event

from tailrabbit import logevents
from tailrabbit.files.checkpoints import CheckpointStore
from tailrabbit.files.copies import CopyJudge
from tailrabbit.files.identity import FINGERPRINT_BYTES, identify, same_content_start
from tailrabbit.files.matches import MatchPolicy
from tailrabbit.files.rotated import away_names
from tailrabbit.files.tailer import FileTailer
from tailrabbit.inputs.base import Input
from tailrabbit.inputs.file_rotation import FileRotation

STAT_INTERVAL = 1.0


class FileInput(FileRotation, Input):
    kind = "file"

    def __init__(self, settings, buffer, stats, state_dir, watcher=None, spool=None):
        # A log file keeps its lines itself; overflow = spool acts as block. `spool`:
        # lines a stop could not leave in their files (not_readable_again), replayed
        # before this input's new lines.
        super().__init__(settings, buffer, stats, spool)
        self.watcher = watcher
        self.pattern = settings.path
        self.store = CheckpointStore(state_dir, settings.name)
        self.matches = MatchPolicy(settings.name, self.pattern, state_dir,
                                   settings.follow_symlinks)
        self.copies = CopyJudge(settings.name, self.stats, opener=self.matches.open)
        self._wake = Event()
        self._tailers = {}           # path -> FileTailer of the file that path names now
        self._draining = []          # tailers of files renamed away or deleted
        self._first_start = True
        self._warned_missing = False
        self.spilled = []            # batches killed on their way to the buffer
        self._paths = {}             # the matches of the current poll

    # ---- the greenlet ----------------------------------------------------------------

    def run(self):
        directory = os.path.dirname(self.pattern)
        watch = self.watcher is not None and not glob.has_magic(directory)
        if watch:
            self.watcher.watch(directory, self._wake.set)
        try:
            self.start(time.monotonic())
            while True:
                self._wake.clear()
                if watch:
                    self.watcher.ensure(directory)
                now = time.monotonic()
                self.poll(now)
                self._wake.wait(self._next_wait(now))
        finally:
            if watch:
                self.watcher.unwatch(directory, self._wake.set)
            self.close()

    def _next_wait(self, now):
        """Until the next poll: STAT_INTERVAL, or less when a multiline event held is due
        sooner (it must not wait a whole interval past its multiline_timeout)."""
        dues = [due for tailer in list(self._tailers.values()) + self._draining
                if (due := tailer.deadline()) is not None]
        return max(0.0, min([STAT_INTERVAL] + [due - now for due in dues]))

    def close(self):
        """Close every file. A deleted file's unterminated last line is published now: no
        restart could find it again (a renamed one is resumed from its checkpoint)."""
        for tailer in self._draining:
            if tailer.fd is not None and os.fstat(tailer.fd).st_nlink == 0:
                self._take(tailer.flush())
        for tailer in self._draining + list(self._tailers.values()):
            tailer.close()
        self._draining, self._tailers = [], {}

    def save_checkpoints(self):
        self.store.save()

    def _new_framer(self, offset):
        return self.new_framer(offset, want_offsets=True)

    def _take(self, pairs):
        """Submit what a tailer read ((Framed, FilePosition) pairs); True if it read any."""
        took = False
        for framed, position in pairs:
            took = True
            self.submit_framed(framed, position)
        return took

    def _finish(self, tailer):
        """A file that will not grow: its last line and event go out, then it is closed."""
        self._take(tailer.flush())
        tailer.close()

    def _retire(self, tailer):
        """A file rotated away that stayed quiet for rotate_wait: finished, not read again."""
        deleted = os.fstat(tailer.fd).st_nlink == 0
        self._finish(tailer)
        self._draining.remove(tailer)
        if deleted:                               # its inode will be another file's
            self.store.forget(tailer.record)

    @property
    def overflow(self):
        return "block" if self.settings.overflow == "spool" else self.settings.overflow

    def spill(self, batch):
        """A batch killed on its way to the buffer (a stop, a reload): kept for the stop
        (InputSet.spool_undelivered: spooled if no file gives it again, else read again
        from the checkpoint)."""
        self.spilled.append(batch)

    def _hand_on(self, batch):
        """Lines a stop spooled go first, and a file input never appends to its spool: a
        line replayed from it confirms the spool, not the file's checkpoint, and would be
        read again from the file (overflow = drop behind a spool did that)."""
        while self.spool is not None and self.spool.holds_lines():
            self.spool.wait_replayed()
        super()._hand_on(batch)

    def not_readable_again(self, batches):
        """The batches whose lines the next start would not read from a file: their file
        was truncated since (in place, or copied shorter than what we read: a copy that
        holds them takes the file's record), or deleted (compress without delaycompress),
        or its record forgotten; and lines replayed from this input's spool. A stop with
        the broker down spools these (InputSet.spool_undelivered); without it they were
        lost. Asked at the stop, after the readers closed their files: by name."""
        records, findable, matched = self.store.records, {}, self.matches.scan()

        def lost(batch):
            mark = batch.source
            record = getattr(mark, "record", None)
            if record is None or mark.generation != record.generation \
                    or records.get(record.identity.inode) is not record:
                return True
            if id(record) not in findable:
                findable[id(record)] = _findable(record, matched)
            return not findable[id(record)]
        return [batch for batch in batches if lost(batch)]

    def followed(self):
        """(path, descriptor, checkpoint record) of every open file: those at their
        path and those renamed away and still read (for the lag metrics)."""
        return [(tailer.path, tailer.fd, tailer.record)
                for tailer in list(self._tailers.values()) + self._draining
                if tailer.fd is not None]

    def adopt(self, removed):
        """Added back by a reload while the removed input's lines are still in flight: its
        live checkpoints are this input's (two stores of one name wrote the same file in
        turns, and this one read again what that one had read: 300 of 300 lines twice)."""
        self.store, self.spilled = removed.store, removed.spilled + self.spilled

    def start(self, now):
        """Load the checkpoints (unless adopted live); read files rotated while stopped."""
        store = self.store          # an adopted one is loaded and live: not read again
        self._first_start = not (store.loaded_existing or store.records or store.load())
        self._recover_rotated(now)

    # ---- one poll --------------------------------------------------------------------

    def poll(self, now):
        for tailer in list(self._draining):
            if tailer.size() > tailer.read_pos and not self._older_first(tailer, now):
                continue                          # an older file's last line goes first
            if (not self._take(tailer.read(now))
                    and now - tailer.last_growth >= self.settings.rotate_wait):
                self._retire(tailer)
        paths = self._paths = self._matches()
        for path, tailer in list(self._tailers.items()):
            if path not in paths or paths[path] != tailer.inode:
                self._rotated_away(path, tailer, now)
        for tailer in list(self._tailers.values()):
            self._read_current(tailer, now)       # a truncation takes its copy's tail first
        self.copies.keep_only(paths)
        for path in paths:
            if path not in self._tailers:
                tailer = self._open(path, now)
                if tailer is not None:
                    self._read_current(tailer, now)
        for tailer in list(self._tailers.values()) + self._draining:
            self._take(tailer.expire(now))     # multiline events held past their time
        for tailer in self._tailers.values():
            record = tailer.record
            record.seen = time.time()
            if record.identity.length < min(FINGERPRINT_BYTES, tailer.read_pos):
                record.identity = identify(tailer.fd)     # a short file grew: fingerprint more
        if self._first_start:
            self._first_start = False
            self.store.mark_started()

    def _matches(self):
        """path -> (dev, ino) of every regular file the pattern names now (may be read)."""
        found = self.matches.scan()
        if not found and not self._warned_missing and not self._tailers:
            logevents.file_missing(input=self.name, path=self.pattern)
            self._warned_missing = True
        return found

    def _rotated_away(self, path, tailer, now):
        """The path names another file now (or none): drain the old one to its end."""
        del self._tailers[path]
        self._read_current(tailer, now)      # what it holds comes before the new file
        self._draining.append(tailer)
        self._wake.set()
        logevents.file_rotated(input=self.name, path=path)

    def _open(self, path, now):
        """Start following the new match `path`; returns its tailer, or None."""
        try:
            fd = self.matches.open(path)      # fails on a link swapped in since the scan
        except OSError:
            return None
        identity = identify(fd)
        for tailer in self._draining:          # a rotated file renamed into the glob
            if tailer.inode == identity.inode:
                os.close(fd)
                return None
        record = self.store.find(fd, identity)
        size = os.fstat(fd).st_size
        if record is None and not self._first_start:
            tracked = list(self._tailers.values()) + self._draining
            offset = self.copies.offset(path, fd, identity, size, tracked, now)
            if offset is None:                 # a copy: its lines come from its original
                os.close(fd)
                return None
            record = self.store.add(identity, path, offset)
        self.copies.forget(path)
        if record is None:
            offset = size if self._first_start and self.settings.start_at == "end" else 0
            record = self.store.add(identity, path, offset)
        elif record.offset > size:
            logevents.file_shorter_than_checkpoint(input=self.name, path=path)
            record.restart(0)
        record.follow(path, self.matches.resolved(path, fd))
        tailer = FileTailer(self._new_framer, path, fd, record, record.resume_offset())
        tailer.last_growth = now
        self._tailers[path] = tailer
        self._warned_missing = False
        return tailer

    def _read_current(self, tailer, now):
        size = tailer.size()
        if (size < tailer.read_pos or tailer.rewritten()
                or not same_content_start(tailer.fd, tailer.record.identity)):
            self._truncated(tailer, now)     # shorter, or rewritten past our offset
        elif size > tailer.read_pos and not self._older_first(tailer, now):
            return                           # an older file's last line goes first
        self._take(tailer.read(now))


def _findable(record, matched):
    """True if the next start reads the file of `record` again: the pattern opens it at
    its name, or it was renamed away or copied (a copytruncate copy keeps the file's record
    and path), or a link was switched away from it (files/rotated.py: a start recovers such
    a file by identity). A file at its name that the pattern does not open (one the pattern
    no longer matches) is read by nobody: False."""
    def at(name):
        try:
            st = os.stat(name)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == record.identity.inode
    if at(record.path):
        return record.path in matched
    return any(at(name) for name in away_names(record))
