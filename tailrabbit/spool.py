"""The on-disk spool of one input: where its lines go when the memory buffer is full
(overflow = spool), and where a graceful stop puts the lines it could not deliver.

Layout: `state_dir/spool/<input>/` holds segment files `<seq>.seg` and `position.json`.
A segment is a sequence of batches, each a header line `count timestamp truncated-indexes`
followed by exactly `count` lines; lines never contain "\\n", so no escaping is needed and
a batch costs one write. Segments are replayed in sequence order into the buffer, before
any newer line of the input (while the spool holds anything, new lines are appended to it).
`position.json` is the first byte not yet *confirmed* by the broker: a replayed batch moves
it only when confirmed, so a crash replays (repeats) rather than loses. A graceful stop
prepends what is still unconfirmed in memory as a segment numbered before the others.
"""

import json
import logging
import os

from gevent.event import Event

from tailrabbit.line import Batch
from tailrabbit.logsetup import RateLimitedLog

log = logging.getLogger("tailrabbit.spool")

SEGMENT_BYTES = 16 << 20
FIRST_SEQ = 10 ** 12          # room to prepend segments before the first one


class Spool:
    def __init__(self, state_dir, input_name, max_bytes, buffer, stats):
        self.directory = os.path.join(state_dir, "spool", input_name)
        self.input_name = input_name
        self.max_bytes = max_bytes
        self.buffer = buffer
        self.stats = stats
        self.wake = Event()
        self._segments = []          # sequence numbers on disk, oldest first
        self._sizes = {}             # seq -> bytes
        self._write_fd = None
        self._write_seq = None
        self._read = None            # (seq, offset) of the next batch to replay
        self._confirmed = None       # (seq, offset) before which everything is confirmed
        self._position_dirty = False
        self._replaying = 0          # batches taken from disk, not yet in the buffer
        self._warn_full = RateLimitedLog(
            log, f"input {input_name}: spool full (spool_max_bytes = {max_bytes}): "
                 f"lines dropped, see the dropped counter", logging.ERROR)
        self._load()

    # ---- state -----------------------------------------------------------------------

    def _load(self):
        if not os.path.isdir(self.directory):
            return
        for name in os.listdir(self.directory):
            if name.endswith(".seg") and name[:-4].isdigit():
                seq = int(name[:-4])
                self._segments.append(seq)
                self._sizes[seq] = os.path.getsize(self._path(seq))
        self._segments.sort()
        position = None
        try:
            with open(os.path.join(self.directory, "position.json")) as handle:
                data = json.load(handle)
            position = (int(data["segment"]), int(data["offset"]))
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError) as error:
            log.warning("spool of input %s: position.json is corrupt (%s); replaying its "
                        "segments from their start", self.input_name, error)
        if position is not None and position[0] in self._sizes:
            self._segments = [s for s in self._segments if s >= position[0]]
        else:
            position = (self._segments[0], 0) if self._segments else None
        self._read = self._confirmed = position
        if self._segments:
            log.info("input %s: %d bytes spooled by an earlier run will be published first",
                     self.input_name, self.pending_bytes())

    def _path(self, seq):
        return os.path.join(self.directory, f"{seq}.seg")

    def pending_bytes(self):
        total = sum(self._sizes.get(seq, 0) for seq in self._segments)
        if self._confirmed is not None:
            total -= self._confirmed[1]
        return total

    def holds_lines(self):
        """True while anything is on disk not yet replayed, or being replayed."""
        return self._replaying > 0 or (
            self._read is not None and (self._read[0] != self._segments[-1]
                                        or self._read[1] < self._sizes[self._read[0]]))

    # ---- writing ---------------------------------------------------------------------

    def append(self, batch):
        """Spool a batch at the end (newest). Beyond spool_max_bytes: counted, dropped."""
        data = _encode(batch)
        if self.pending_bytes() + len(data) > self.max_bytes:
            self.stats.dropped += len(batch.lines)
            self._warn_full()
            return
        if self._write_fd is None or self._sizes[self._write_seq] >= SEGMENT_BYTES:
            self._open_segment((self._segments[-1] + 1) if self._segments else FIRST_SEQ)
        os.write(self._write_fd, data)
        self._sizes[self._write_seq] += len(data)
        if self._read is None:
            self._read = self._confirmed = (self._write_seq, 0)
        self.stats.spooled += len(batch.lines)
        self.wake.set()

    def prepend(self, batches):
        """A graceful stop: `batches` (every unconfirmed batch of the input still in
        memory, oldest first, replayed ones included) go before what was never replayed.

        The new first segment holds them, then the unreplayed rest of the segment being
        replayed; segments fully replayed are dropped (their batches are in `batches`).
        """
        batches = [b for b in batches if b.lines]
        if not batches and self._read == self._confirmed:
            return
        self._close_write_segment()
        seq = (self._segments[0] if self._segments else FIRST_SEQ + 1) - 1
        os.makedirs(self.directory, exist_ok=True)
        with open(self._path(seq), "wb") as handle:
            for batch in batches:
                handle.write(_encode(batch))
            if self._read is not None:
                read_seq, offset = self._read
                with open(self._path(read_seq), "rb") as old:
                    old.seek(offset)
                    while True:
                        chunk = old.read(1 << 20)
                        if not chunk:
                            break
                        handle.write(chunk)
                for old_seq in [s for s in self._segments if s <= read_seq]:
                    self._remove(old_seq)
            handle.flush()
            os.fsync(handle.fileno())
        self._segments.insert(0, seq)
        self._sizes[seq] = os.path.getsize(self._path(seq))
        self._read = self._confirmed = (seq, 0)
        self._position_dirty = True
        self.stats.spooled += sum(len(b.lines) for b in batches if b.source is None)
        self.save_position()

    def _close_write_segment(self):
        if self._write_fd is not None:
            os.fsync(self._write_fd)
            os.close(self._write_fd)
            self._write_fd = self._write_seq = None

    def _open_segment(self, seq):
        if self._write_fd is not None:
            os.close(self._write_fd)
        os.makedirs(self.directory, exist_ok=True)
        self._write_fd = os.open(self._path(seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND
                                 | os.O_CLOEXEC, 0o600)
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

    def _next_batch(self):
        while self._read is not None:
            seq, offset = self._read
            if offset < self._sizes[seq]:
                batch, end = self._read_batch(seq, offset)
                if batch is not None:
                    batch.start = self._read
                    self._read = (seq, end)
                    batch.source = (self, seq)
                    batch.end_offset = end
                    return batch
                self._sizes[seq] = offset      # a torn last batch (crash mid-write): skip
            later = [s for s in self._segments if s > seq]
            if not later:
                return None
            self._read = (later[0], 0)
        return None

    def _read_batch(self, seq, offset):
        with open(self._path(seq), "rb") as handle:
            handle.seek(offset)
            header = handle.readline()
            try:
                count, timestamp, truncated = header.rstrip(b"\n").split(b" ", 2)
                count, timestamp = int(count), int(timestamp)
            except ValueError:
                log.error("input %s: spool segment %s is damaged at byte %d; skipping the "
                          "rest of it", self.input_name, self._path(seq), offset)
                return None, offset
            lines = [handle.readline() for _ in range(count)]
            if not header.endswith(b"\n") or any(not line.endswith(b"\n") for line in lines):
                return None, offset
            end = handle.tell()
        indexes = {int(i) for i in truncated.split(b",") if i}
        return Batch(self.input_name, [line[:-1] for line in lines], truncated=indexes or None,
                     timestamp=timestamp), end

    def confirm(self, seq, end):
        """The broker confirmed a replayed batch ending at (seq, end)."""
        if self._confirmed is None or (seq, end) <= self._confirmed:
            return
        for old in [s for s in self._segments if s < seq]:
            self._remove(old)
        self._confirmed = (seq, end)
        self._position_dirty = True

    def _remove(self, seq):
        self._segments.remove(seq)
        self._sizes.pop(seq, None)
        if seq == self._write_seq:
            self._close_write_segment()
        try:
            os.unlink(self._path(seq))
        except FileNotFoundError:
            pass

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
        path = os.path.join(self.directory, "position.json")
        if self._confirmed is None:
            if os.path.exists(path):
                os.unlink(path)
        else:
            temp = path + ".new"
            with open(temp, "w") as handle:
                json.dump({"segment": seq, "offset": offset}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        self._position_dirty = False

    def close(self):
        self._close_write_segment()
        self.save_position()


def _encode(batch):
    truncated = ",".join(str(i) for i in sorted(batch.truncated or ()))
    header = b"%d %d %s\n" % (len(batch.lines), batch.timestamp, truncated.encode())
    return header + b"\n".join(batch.lines) + b"\n"

