"""The on-disk spool of one input: where its lines go when the memory buffer is full
(overflow = spool), and where a graceful stop puts the lines it could not deliver.

Layout: `state_dir/spool/<input>/` holds segment files `<seq>.seg` (the batch format is in
format.py) and `position.json`. Segments are replayed in sequence order into the
buffer, before any newer line of the input (while the spool holds anything, new lines are
appended to it). `position.json` is the first byte not yet *confirmed* by the broker: a
replayed batch moves it only when confirmed, so a crash replays (repeats) rather than loses.

This module is the Spool's state and its write half: appending batches to segment files,
and removing segments. The read half (the replay greenlet, damaged ranges skipped, confirms
and position.json) is replay.py; a graceful stop's prepend and the load at start are
restart.py.

Failures are accounted, never silent and never fatal. A write that fails (disk full,
read-only, permission) is "spool full": the batch is counted as dropped, a rate-limited
ERROR names the input, the directory and the error, and the input keeps reading. A short
write is truncated back, so a segment never holds a torn batch; if even that fails, the
segment is closed (the torn batch stays its tail, where the reader detects it) and the range
is remembered in `_failed_writes`, so replay skips it with an ERROR.

A graceful stop prepends what is still unconfirmed in memory as a new segment numbered
before the others (restart.py: how it survives a SIGKILL at any point).
"""

import os

from gevent.event import Event

from tailrabbit import logevents
from tailrabbit.spool import restart as spool_restart
from tailrabbit.spool.files import make_private_directory, open_private_append
from tailrabbit.spool.format import encode
from tailrabbit.spool.replay import Replay
from tailrabbit.spool.restart import FIRST_SEQ

SEGMENT_BYTES = 16 << 20


class Spool(Replay):
    """One input's spool; the public methods are append, prepend, close here, and
    replay_forever, confirm, save_position, holds_lines, wait_replayed in replay.py."""

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

    # ---- writing ---------------------------------------------------------------------

    def append(self, batch):
        """Spool a batch at the end (newest). Beyond spool_max_bytes, or when the disk
        refuses it: counted as dropped, logged (rate-limited), never raised."""
        if not batch.lines:
            return
        data = encode(batch)
        if self.pending_bytes() + len(data) > self.max_bytes:
            self.stats.dropped += len(batch.lines)
            logevents.spool_full(input=self.input_name, path=self.directory,
                                 spool_max_bytes=self.max_bytes)
            return
        try:
            seq, offset = self._write(data)
        except OSError as error:
            self.stats.dropped += len(batch.lines)
            logevents.spool_write_failed(input=self.input_name, path=self.directory,
                                         reason=error.strerror or str(error))
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
            logevents.spool_truncate_failed(input=self.input_name, offset=before,
                                            path=self._path(seq), reason=error.strerror)
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

    # ---- segments --------------------------------------------------------------------

    def _remove(self, seq):
        """Delete a segment wholly confirmed (replay.py), or replaced by a prepend or left
        below the saved position (restart.py)."""
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
            logevents.spool_segment_remove_failed(input=self.input_name,
                                                  path=self._path(seq),
                                                  reason=error.strerror)

    def close(self):
        """At exit: never raises (a full disk was reported when it refused the lines)."""
        try:
            self._close_write_segment()
            self.save_position()
        except OSError as error:
            logevents.spool_flush_failed(input=self.input_name, path=self.directory,
                                         reason=error.strerror)
