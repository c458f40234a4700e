"""One open log file: read what was appended, cut it into lines (or multiline events) with
exact byte offsets.

A tailer holds its file descriptor, so a file renamed away by logrotate is still read to
its end. It never publishes a partial last line while the file may grow; `finish()` does,
once the file has been rotated away and read to its end. Each batch carries the file's
checkpoint record and generation, so the record advances only when the broker confirmed.
"""

import os

import gevent

from tailrabbit.marks import FilePosition

READ_CHUNK = 1 << 18
TAIL_BYTES = 32768   # the last bytes read: to recognise a copytruncate copy of this file,
                     # even one that ends a few lines before what we read


class FileTailer:
    def __init__(self, owner, path, fd, record, offset):
        self.owner = owner            # the FileInput: submit_framed(), new_framer()
        self.path = path
        self.fd = fd
        self.record = record          # checkpoints.Record of this file
        self.framer = owner.new_framer(offset, want_offsets=True)
        self.read_pos = offset        # bytes read so far (the splitter may hold a partial)
        self.tail = os.pread(fd, min(offset, TAIL_BYTES), max(0, offset - TAIL_BYTES))
        self.last_growth = 0.0

    @property
    def inode(self):
        st = os.fstat(self.fd)
        return (st.st_dev, st.st_ino)

    def size(self):
        return os.fstat(self.fd).st_size

    def read(self, now, fd=None):
        """Read everything appended since the last call; True if anything was.

        `fd`: read from another descriptor at the same offsets (a copytruncate copy).
        """
        fd = self.fd if fd is None else fd
        grew = False
        source = FilePosition(self.record)
        while True:
            data = os.pread(fd, READ_CHUNK, self.read_pos)
            if not data:
                break
            grew = True
            self.read_pos += len(data)
            self.tail = (self.tail + data[-TAIL_BYTES:])[-TAIL_BYTES:]
            self._hand_on(self.framer.feed(data), source)
            gevent.sleep(0)
        if grew:
            self.last_growth = now
        return grew

    def _hand_on(self, framed, source=None):
        self.owner.submit_framed(framed, source or FilePosition(self.record))
        # up to the first byte of an event still held: a new reader starts there
        self.record.read_end = framed.end_offset

    @property
    def consumed(self):
        """Offset of the first byte not cut into lines yet (an unterminated last line)."""
        return self.framer.offset

    def expire(self, now):
        """Publish the multiline event held if multiline_timeout passed without a line."""
        framed = self.framer.expire(now)
        if framed is not None:
            self._hand_on(framed)

    def deadline(self):
        return self.framer.deadline()

    def end_event(self):
        """The file's content ends here (a copytruncate): the event held ends with it."""
        framed = self.framer.expire(float("inf"))
        if framed is not None:
            self._hand_on(framed)

    def restart_at(self, offset):
        """The file was truncated: forget what was read beyond `offset`."""
        self.framer = self.owner.new_framer(offset, want_offsets=True)
        self.read_pos = offset
        self.tail = b""

    def flush(self):
        """Publish the unterminated tail and the event held (the file will not grow)."""
        self._hand_on(self.framer.flush())

    def finish(self):
        self.flush()
        self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
