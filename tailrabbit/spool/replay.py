"""The read half of the Spool (store.py): replaying spooled batches into the buffer, oldest
first, and the confirmed position that position.json keeps.

Why apart from store.py: the two halves run in different greenlets and fail differently.
Appending runs in the input's reader and never raises (a refused write is counted as
dropped); replaying runs in its own greenlet, reads back what may be damaged, and moves the
confirmed position only when the broker confirms, so a crash repeats lines rather than
loses them. What they share is the segment list and sizes, and the two positions in it:

- `_read`: (segment, offset) of the next batch to replay;
- `_confirmed`: (segment, offset) before which the broker confirmed everything. Segments
  wholly before it are removed; position.json records it, written atomically
  (tailrabbit/atomic.py: temp file, fsync, rename, fsync of the directory, like the
  checkpoints).

Damaged content (a bad header, a count past the end, a torn batch whose write could not be
undone) is skipped range by range, each with one ERROR giving bytes and lines, the lines
counted as dropped; replay resumes at the next provably valid batch (format.resync). A
skipped range right after the confirmed position counts as confirmed, so it never holds
back the removal of a segment.

Rejected: a separate reader object owning `_read` and `_confirmed`. A graceful stop's
prepend (restart.py) rewrites both together with the segment list in one crash-safe
sequence, so they belong to the one Spool whose state restart.py already works on; this
class only groups the methods.
"""

import os

from tailrabbit import logevents
from tailrabbit.atomic import write_json
from tailrabbit.marks import SpoolPosition
from tailrabbit.spool.files import discard
from tailrabbit.spool.format import Damaged, count_lines, read_batch, resync


class Replay:
    """Mixed into Spool: the replay greenlet, confirms and the saved position. Uses the
    Spool's state (its `__init__` says what each attribute holds) and its `_path`,
    `_remove`."""

    # ---- progress --------------------------------------------------------------------

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

    # ---- replaying -------------------------------------------------------------------

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
            logevents.spool_batch_skipped(input=self.input_name, path=self._path(seq),
                                          bytes=torn_end - offset, offset=offset)
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
                    logevents.spool_segment_damaged(
                        input=self.input_name, path=self._path(seq), offset=offset,
                        reason=str(damage), bytes=resume - offset, count=lines,
                        resumes=resume != size)
                    self._skip(seq, offset, resume)
                    return None
        except OSError as error:
            logevents.spool_segment_unreadable(input=self.input_name, path=self._path(seq),
                                               reason=error.strerror, bytes=size - offset)
            self._skip(seq, offset, size)
            return None
        batch.start = (seq, offset)
        batch.source = SpoolPosition(self, seq)
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

    # ---- the confirmed position ------------------------------------------------------

    def _position_data(self):
        if self._confirmed is None:
            return {}
        seq, offset = self._confirmed
        return {"segment": seq, "offset": offset}

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
            write_json(path, self._position_data())
        self._position_dirty = False
        self._note_progress()
