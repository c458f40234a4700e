"""The on-disk spool of one input: where its lines go when the memory buffer is full
(overflow = spool), and where a graceful stop puts the lines it could not deliver.

Layout: `state_dir/spool/<input>/` holds segment files `<seq>.seg` (the batch format is in
format.py) and `position.json`. Segments are replayed in sequence order into the
buffer, before any newer line of the input (while the spool holds anything, new lines are
appended to it). `position.json` is the first byte not yet *confirmed* by the broker: a
replayed batch moves it only when confirmed, so a crash replays (repeats) rather than loses.

Failures are accounted, never silent and never fatal:
- A write that fails (disk full, read-only, permission) is "spool full": the batch is
  counted as dropped, a rate-limited ERROR names the input, the directory and the error, and
  the input keeps reading. A short write is truncated back, so a segment never holds a torn
  batch; if even that fails, the segment is closed (the torn batch stays its tail, where the
  reader detects it) and the range is remembered, so replay skips it with an ERROR.
- Damaged content (a bad header, a count past the end) is skipped range by range, each with
  one ERROR giving bytes and lines, and the lines counted as dropped; replay resumes at the
  next provably valid batch (format.resync).

A graceful stop prepends what is still unconfirmed in memory as a new segment numbered
before the others (restart.py: how it survives a SIGKILL at any point).
"""

import json
import logging
import os

from gevent.event import Event

from tailrabbit.spool import restart as spool_restart
from tailrabbit.logsetup import RateLimitedLog
from tailrabbit.spool.files import (discard, make_private_directory, open_private_append,
                                    write_private_file)
from tailrabbit.spool.format import Damaged, count_lines, encode, read_batch, resync
from tailrabbit.spool.restart import FIRST_SEQ

log = logging.getLogger("tailrabbit.spool")

SEGMENT_BYTES = 16 << 20


class Spool:
    def __init__(self, state_dir, input_name, max_bytes, buffer, stats):
        self.directory = os.path.join(state_dir, "spool", input_name)
        self.input_name = input_name
        self.max_bytes = max_bytes
        self.buffer = buffer
        self.stats = stats
        self.wake = Event()
        self._replayed = Event()     # set exactly while holds_lines() is False
        self._segments = []          # sequence numbers on disk, oldest first
        self._sizes = {}             # seq -> bytes
        self._write_fd = None
        self._write_seq = None
        self._read = None            # (seq, offset) of the next batch to replay
        self._confirmed = None       # (seq, offset) before which everything is confirmed
        self._position_dirty = False
        self._replaying = 0          # batches taken from disk, not yet in the buffer
        self._failed_writes = {}     # (seq, offset) -> end: torn batches already dropped
        self._skipped = {}           # (seq, offset) -> end: ranges replay skipped
        self._warn_full = RateLimitedLog(
            log, f"input {input_name}: spool full (spool_max_bytes = {max_bytes}): "
                 f"lines dropped, see the dropped counter", logging.ERROR)
        self._warn_write = RateLimitedLog(
            log, f"input {input_name}: cannot write to the spool in "
                 f"{self.directory.replace('%', '%%')}: %s; lines dropped, see the dropped "
                 f"counter", logging.ERROR)
        self._load()
        self._note_progress()

    # ---- state -----------------------------------------------------------------------

    def _load(self):
        spool_restart.load(self)

    def _path(self, seq):
        return os.path.join(self.directory, f"{seq}.seg")

    def pending_bytes(self):
        total = sum(self._sizes.get(seq, 0) for seq in self._segments)
        if self._confirmed is not None:
            total -= self._confirmed[1]
        return total

    def holds_lines(self):
        """True while anything is on disk not yet replayed, or being replayed."""
        if self._replaying > 0:
            return True
        if self._read is None:
            return False
        seq, offset = self._read
        return offset < self._sizes.get(seq, 0) or bool(self._segments
                                                         and self._segments[-1] > seq)

    def wait_replayed(self, timeout=None):
        """Block the calling greenlet until holds_lines() is False: True, or False after
        `timeout` seconds. For an input that must queue behind the replay (overflow =
        block) rather than go around it."""
        return self._replayed.wait(timeout)

    def _note_progress(self):
        if self.holds_lines():
            self._replayed.clear()
        else:
            self._replayed.set()

    # ---- writing ---------------------------------------------------------------------

    def append(self, batch):
        """Spool a batch at the end (newest). Beyond spool_max_bytes, or when the disk
        refuses it: counted as dropped, logged (rate-limited), never raised."""
        if not batch.lines:
            return
        data = encode(batch)
        if self.pending_bytes() + len(data) > self.max_bytes:
            self.stats.dropped += len(batch.lines)
            self._warn_full()
            return
        try:
            seq, offset = self._write(data)
        except OSError as error:
            self.stats.dropped += len(batch.lines)
            self._warn_write(error.strerror or str(error))
            return
        if self._read is None:
            self._read = self._confirmed = (seq, offset)
        self.stats.spooled += len(batch.lines)
        self._note_progress()
        self.wake.set()

    def _write(self, data):
        """Append `data` whole to the write segment, or raise OSError leaving none of it:
        (seq, offset where it starts)."""
        if self._write_fd is None or self._sizes[self._write_seq] >= SEGMENT_BYTES:
            self._open_segment((self._segments[-1] + 1) if self._segments else FIRST_SEQ)
        fd, seq = self._write_fd, self._write_seq
        before = self._sizes[seq]
        view, written = memoryview(data), 0
        try:
            while written < len(data):
                written += os.write(fd, view[written:])
        except OSError:
            if written:
                self._undo_write(fd, seq, before, before + written)
            raise
        self._sizes[seq] = before + written
        return seq, before

    def _undo_write(self, fd, seq, before, end):
        try:
            os.ftruncate(fd, before)
            return
        except OSError as error:
            log.error("input %s: cannot truncate the torn batch at byte %d of %s (%s); "
                      "replay will skip it", self.input_name, before, self._path(seq),
                      error.strerror)
        # The torn batch stays the tail of a closed segment: nothing is written after it.
        self._failed_writes[(seq, before)] = end
        self._sizes[seq] = end
        self._write_fd = self._write_seq = None
        os.close(fd)

    def prepend(self, batches):
        """A graceful stop: `batches` (every unconfirmed batch of the input still in
        memory, oldest first, replayed ones included) go before what was never replayed,
        crash-safe; OSError (a full disk) leaves the spool as it was. See restart.py."""
        spool_restart.prepend(self, batches)

    def _position_data(self):
        if self._confirmed is None:
            return {}
        seq, offset = self._confirmed
        return {"segment": seq, "offset": offset}

    def _close_write_segment(self):
        fd, self._write_fd, self._write_seq = self._write_fd, None, None
        if fd is not None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _open_segment(self, seq):
        self._close_write_segment()
        make_private_directory(self.directory)
        self._write_fd = open_private_append(self._path(seq))
        self._write_seq = seq
        self._segments.append(seq)
        self._sizes[seq] = os.fstat(self._write_fd).st_size

    # ---- replaying ---------------------------------------------------------------------

    def replay_forever(self):
        """The greenlet that moves spooled batches into the buffer, oldest first."""
        while True:
            batch = self._next_batch()
            if batch is None:
                self.wake.clear()
                self._note_progress()
                self.wake.wait()
                continue
            self._replaying += 1
            try:
                self.buffer.put(batch)          # waits for room
            except BaseException:               # killed while waiting: not replayed
                self._read = batch.start
                raise
            finally:
                self._replaying -= 1
                self._note_progress()

    def _next_batch(self):
        while self._read is not None:
            seq, offset = self._read
            size = self._sizes.get(seq, 0)
            if offset < size:
                batch = self._read_at(seq, offset, size)
                if batch is not None:
                    return batch
                continue                        # a range was skipped: _read moved on
            later = [s for s in self._segments if s > seq]
            if not later:
                return None
            self._read = (later[0], 0)
        return None

    def _read_at(self, seq, offset, size):
        """The batch at (seq, offset), or None after moving _read past what cannot be
        read (counted and logged)."""
        torn_end = self._failed_writes.pop((seq, offset), None)
        if torn_end is not None:
            log.error("input %s: spool segment %s: skipped %d bytes at byte %d, a batch "
                      "whose write failed and could not be undone (its lines were counted "
                      "as dropped then)", self.input_name, self._path(seq),
                      torn_end - offset, offset)
            self._skip(seq, offset, torn_end)
            return None
        try:
            with open(self._path(seq), "rb") as handle:
                try:
                    batch, end = read_batch(handle, offset, size, self.input_name)
                except Damaged as damage:
                    resume = resync(handle, offset, size)
                    lines = count_lines(handle, offset, resume)
                    self.stats.dropped += lines
                    log.error("input %s: spool segment %s is damaged at byte %d (%s): "
                              "skipped %d bytes, %d lines (counted as dropped)%s",
                              self.input_name, self._path(seq), offset, damage,
                              resume - offset, lines,
                              "" if resume == size else "; replay resumes after them")
                    self._skip(seq, offset, resume)
                    return None
        except OSError as error:
            log.error("input %s: cannot read spool segment %s (%s): skipped its last %d "
                      "bytes", self.input_name, self._path(seq), error.strerror,
                      size - offset)
            self._skip(seq, offset, size)
            return None
        batch.start = (seq, offset)
        batch.source = (self, seq)
        batch.end_offset = end
        self._read = (seq, end)
        return batch

    def _skip(self, seq, offset, end):
        self._read = (seq, end)
        self._skipped[(seq, offset)] = end
        self._advance_confirmed()

    def _advance_confirmed(self):
        """A skipped range right after the confirmed position counts as confirmed."""
        while self._confirmed in self._skipped:
            self._confirmed = (self._confirmed[0], self._skipped.pop(self._confirmed))
            self._position_dirty = True

    def confirm(self, seq, end):
        """The broker confirmed a replayed batch ending at (seq, end)."""
        if self._confirmed is None or (seq, end) <= self._confirmed:
            return
        for old in [s for s in self._segments if s < seq]:
            self._remove(old)
        self._confirmed = (seq, end)
        self._position_dirty = True
        if self._skipped:
            self._advance_confirmed()

    def _remove(self, seq):
        self._segments.remove(seq)
        self._sizes.pop(seq, None)
        if seq == self._write_seq:
            try:
                self._close_write_segment()
            except OSError:
                pass                     # removed anyway
        try:
            os.unlink(self._path(seq))
        except FileNotFoundError:
            pass
        except OSError as error:         # removed at the next start (below the position)
            log.error("input %s: cannot remove the replayed spool segment %s: %s",
                      self.input_name, self._path(seq), error.strerror)

    def save_position(self):
        """Atomically, like the checkpoints; drops segments fully confirmed."""
        if not self._position_dirty or self._confirmed is None:
            return
        seq, offset = self._confirmed
        if (offset >= self._sizes.get(seq, 0) and not [s for s in self._segments if s > seq]
                and self._replaying == 0):
            # everything confirmed: start afresh (the segment may still be appended to)
            self._remove(seq)
            self._read = self._confirmed = None
            self._skipped.clear()
        path = os.path.join(self.directory, "position.json")
        if self._confirmed is None:
            discard(path)
        else:
            write_private_file(path, json.dumps(self._position_data()).encode())
        self._position_dirty = False
        self._note_progress()

    def close(self):
        """At exit: never raises (a full disk was reported when it refused the lines)."""
        try:
            self._close_write_segment()
            self.save_position()
        except OSError as error:
            log.error("input %s: cannot close the spool in %s: %s", self.input_name,
                      self.directory, error.strerror)


