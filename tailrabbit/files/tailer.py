"""One open log file: read what was appended, cut it into lines with exact byte offsets.

A tailer holds its file descriptor, so a file renamed away by logrotate is still read to
its end. It never publishes a partial last line while the file may grow; `finish()` does,
once the file has been rotated away and read to its end. Each batch carries the file's
checkpoint record and generation, so the record advances only when the broker confirmed.
"""

import os

import gevent

READ_CHUNK = 1 << 18
TAIL_BYTES = 32768   # the last bytes read: to recognise a copytruncate copy of this file,
                     # even one that ends a few lines before what we read


class FileTailer:
    def __init__(self, owner, path, fd, record, offset):
        self.owner = owner            # the FileInput: submit(), new_splitter()
        self.path = path
        self.fd = fd
        self.record = record          # checkpoints.Record of this file
        self.splitter = owner.new_splitter(offset)
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
        source = (self.record, self.record.generation)
        while True:
            data = os.pread(fd, READ_CHUNK, self.read_pos)
            if not data:
                break
            grew = True
            self.read_pos += len(data)
            self.tail = (self.tail + data[-TAIL_BYTES:])[-TAIL_BYTES:]
            lines, offsets, truncated = self.splitter.feed(data, want_offsets=True)
            self.owner.submit(lines, offsets, truncated, source, self.splitter.offset)
            self.record.read_end = self.splitter.offset
            gevent.sleep(0)
        if grew:
            self.last_growth = now
        return grew

    def restart_at(self, offset):
        """The file was truncated: forget what was read beyond `offset`."""
        self.splitter = self.owner.new_splitter(offset)
        self.read_pos = offset
        self.tail = b""

    def flush(self):
        """Publish the unterminated tail (the file will not grow any more)."""
        tail = self.splitter.flush()
        if tail is not None:
            self.owner.submit([tail[0]], [tail[1]], None,
                              (self.record, self.record.generation), self.splitter.offset)
            self.record.read_end = self.splitter.offset

    def finish(self):
        self.flush()
        self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
