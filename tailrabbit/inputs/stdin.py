"""stdin: read to EOF (a pipe, a terminal or a redirected file), then the input is finished.

The tail without a final newline is published too: `tailrabbit -c conf < file` is a bulk
load that ends, and the daemon exits once every line is confirmed.
"""

import fcntl
import os
import stat

import gevent.os

from tailrabbit.inputs.base import Input, blocking_read

FILE_CHUNK = 1 << 18


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
            self.pump(self.fd, self.new_framer(), read=blocking_read, chunk=FILE_CHUNK)
        else:
            flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            gevent.os.make_nonblocking(self.fd)
            try:
                self.pump(self.fd, self.new_framer())
            finally:   # a terminal's flags are shared with the shell: give them back
                fcntl.fcntl(self.fd, fcntl.F_SETFL, flags)
        self.finished = True
