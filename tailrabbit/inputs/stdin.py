"""stdin: read to EOF (a pipe, a terminal or a redirected file), then the input is finished.

The tail without a final newline is published too: `tailrabbit -c conf < file` is a bulk
load that ends, and the daemon exits once every line is confirmed.
"""

import collections
import fcntl
import os
import stat

import gevent.os

from tailrabbit.inputs.base import Input, blocking_read

FILE_CHUNK = 1 << 18

_flags_before = {}                      # fd -> its flags before the first reader
_readers = collections.Counter()        # fd -> readers running on it


class StdinInput(Input):
    kind = "stdin"

    def __init__(self, settings, buffer, stats, spool=None, fd=0):
        super().__init__(settings, buffer, stats, spool)
        self.fd = fd

    def run(self):
        try:
            mode = os.fstat(self.fd).st_mode
        except OSError:          # stdin closed: nothing to read
            self.finished = True
            return
        if stat.S_ISREG(mode):
            framer, first = self.first_framer()
            self.pump(self.fd, framer, read=blocking_read, chunk=FILE_CHUNK, first=first)
        else:
            self._pump_nonblocking()
        self.finished = True

    def _pump_nonblocking(self):
        """A terminal's or pipe's flags are shared with the shell: they are given back when
        the last reader of the descriptor ends. Not by each reader: a reload starts the
        new reader before it stops the old one, and the old one's restore made the
        descriptor blocking under the new one (a blocking read in the hub froze the
        daemon)."""
        _flags_before.setdefault(self.fd, fcntl.fcntl(self.fd, fcntl.F_GETFL))
        _readers[self.fd] += 1
        gevent.os.make_nonblocking(self.fd)
        try:
            framer, first = self.first_framer()
            self.pump(self.fd, framer, first=first)
        finally:
            _readers[self.fd] -= 1
            if not _readers[self.fd]:
                fcntl.fcntl(self.fd, fcntl.F_SETFL, _flags_before.pop(self.fd))
