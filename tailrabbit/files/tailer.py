"""One open log file: read what was appended, cut it into lines (or multiline events) with
exact byte offsets.

A tailer holds its file descriptor, so a file renamed away by logrotate is still read to
its end. It never hands out a partial last line while the file may grow; `flush()` does,
once the file has been rotated away and read to its end. Like Vector's file reader
(read_line returns, file_server builds the event), it returns what it read and leaves
handing it on to its owner: every method that reads yields (Framed, FilePosition) pairs,
the position being the file's checkpoint record and generation, so the record advances
only when the broker confirmed. `record.read_end` moves once the owner took a pair (the
generator resumes), so a reader killed while handing on reads those lines again.
"""

import os

import gevent

from tailrabbit.marks import FilePosition

READ_CHUNK = 1 << 18
TAIL_BYTES = 32768   # the last bytes read: to recognise a copytruncate copy of this file,
                     # even one that ends a few lines before what we read
CHECK_BYTES = 256    # of them, compared with the file at each poll (rewritten())


class FileTailer:
    def __init__(self, new_framer, path, fd, record, offset):
        self.new_framer = new_framer  # offset -> a Framer (the input's splitting settings)
        self.path = path
        self.fd = fd
        self.record = record          # checkpoints.Record of this file
        self.framer = new_framer(offset)
        self.read_pos = offset        # bytes read so far (the splitter may hold a partial)
        self.tail = os.pread(fd, min(offset, TAIL_BYTES), max(0, offset - TAIL_BYTES))
        if self.tail[-1:] not in (b"", b"\n"):
            # Lines start after a "\n": an offset inside a line (a checkpoint in the skipped
            # rest of a line cut at max_line_bytes, start_at = end mid-line) is followed by
            # the rest of a line, which is skipped, not shipped as a line of its own.
            self.framer.skip_to_next_line()
        self.last_growth = 0.0

    @property
    def inode(self):
        st = os.fstat(self.fd)
        return (st.st_dev, st.st_ino)

    def size(self):
        return os.fstat(self.fd).st_size

    def rewritten(self):
        """True if the bytes just before our offset are no longer those we read: the file
        was truncated and written again past our offset (a constant header longer than
        the fingerprint, the same size or larger, hides it otherwise)."""
        count = min(len(self.tail), CHECK_BYTES)
        return bool(count) and (os.pread(self.fd, count, self.read_pos - count)
                                != self.tail[-count:])

    def read(self, now, fd=None):
        """Yield what was appended since the last call, a chunk at a time.

        `fd`: read from another descriptor at the same offsets (a copytruncate copy).
        """
        fd = self.fd if fd is None else fd
        position = FilePosition(self.record)
        while True:
            data = os.pread(fd, READ_CHUNK, self.read_pos)
            if not data:
                break
            self.last_growth = now
            self.read_pos += len(data)
            self.tail = (self.tail + data[-TAIL_BYTES:])[-TAIL_BYTES:]
            yield from self._out(self.framer.feed(data), position)
            gevent.sleep(0)

    def _out(self, framed, position=None):
        if framed is None:
            return
        yield framed, position or FilePosition(self.record)
        # taken: a new reader of this file starts after it (at an event still held)
        self.record.read_end = framed.end_offset

    @property
    def holds_part_of_a_line(self):
        """The last bytes read are the start of a line without its "\n" yet."""
        return self.read_pos > self.framer.offset

    @property
    def consumed(self):
        """Offset of the first byte not cut into lines yet (an unterminated last line)."""
        return self.framer.offset

    def expire(self, now):
        """The multiline event held, if multiline_timeout passed without a new line."""
        return self._out(self.framer.expire(now))

    def deadline(self):
        return self.framer.deadline()

    def end_event(self):
        """The file's content ends here (a copytruncate): the event held ends with it."""
        return self._out(self.framer.expire(float("inf")))

    def hand_over(self, copy):
        """`copy` (a tailer of this file's copytruncate copy: the same bytes at the same
        offsets) goes on from where this one read: the line read in part and the event
        held continue in it, and are not cut where we happened to stop reading."""
        copy.framer, copy.read_pos, copy.tail = self.framer, self.read_pos, self.tail
        self.restart_at(self.read_pos)    # this one keeps nothing of them

    def restart_at(self, offset):
        """The file was truncated: forget what was read beyond `offset`."""
        self.framer = self.new_framer(offset)
        self.read_pos = offset
        self.tail = b""

    def flush(self):
        """The unterminated tail and the event held (the file will not grow)."""
        return self._out(self.framer.flush())

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
