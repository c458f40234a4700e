"""One open log file: read what was appended, cut it into lines with exact byte offsets.

A tailer holds its file descriptor, so a file renamed away by logrotate is still read to
its end. It never publishes a partial last line while the file may grow; `finish()` does,
once the file has been rotated away and read to its end.
"""

import os

import gevent

READ_CHUNK = 1 << 18


class FileTailer:
    def __init__(self, owner, path, fd, identity, offset):
        self.owner = owner            # the FileInput: submit(), new_splitter()
        self.path = path
        self.fd = fd
        self.identity = identity
        self.splitter = owner.new_splitter(offset)
        self.read_pos = offset        # bytes read so far (the splitter may hold a partial)
        self.last_growth = 0.0

    @classmethod
    def open(cls, owner, path, identity_of, offset_of):
        """Open `path`; `offset_of(identity, size)` says where to start. None if gone."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        identity = identity_of(fd)
        offset = offset_of(identity, os.fstat(fd).st_size)
        return cls(owner, path, fd, identity, offset)

    def size(self):
        return os.fstat(self.fd).st_size

    def read(self, now):
        """Read everything appended since the last call; True if anything was."""
        grew = False
        while True:
            data = os.pread(self.fd, READ_CHUNK, self.read_pos)
            if not data:
                break
            grew = True
            self.read_pos += len(data)
            lines, offsets, truncated = self.splitter.feed(data, want_offsets=True)
            self.owner.submit(lines, offsets, truncated, self.identity,
                              self.splitter.offset)
            gevent.sleep(0)
        if grew:
            self.last_growth = now
        return grew

    def restart_at(self, offset):
        """The file was truncated: forget what was read beyond `offset`."""
        self.splitter = self.owner.new_splitter(offset)
        self.read_pos = offset

    def finish(self):
        """The file is done (rotated away and drained): publish its unterminated tail."""
        tail = self.splitter.flush()
        if tail is not None:
            self.owner.submit([tail[0]], [tail[1]], None, self.identity, self.splitter.offset)
        self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
