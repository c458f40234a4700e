"""fifo: nginx writes its access log into a named pipe; we are its reader.

The pipe is opened non-blocking, so opening never waits for a writer and reads go through
the gevent hub. Linux does not report a hang-up on a freshly opened FIFO until a writer has
come and gone, so waiting for the next writer costs nothing. When a writer closes (EOF), its
unterminated tail is published, the FIFO reopened, and the next writer awaited.

The reader must never stop reading while nginx runs (a full pipe blocks nginx's workers):
the input's overflow policy is `spool` by default, so a full memory buffer goes to disk.
The pipe's capacity is raised to 1 MiB where the kernel allows, to ride out short stalls.
"""

import errno
import fcntl
import logging
import os
import stat

import gevent
from gevent.socket import wait_read

from tailrabbit.inputs.base import Input

log = logging.getLogger("tailrabbit.input")

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_SIZE = 1 << 20
RETRY_SECONDS = 5.0


class FifoInput(Input):
    kind = "fifo"

    def run(self):
        path = self.settings.path
        while True:
            fd = self._open(path)
            if fd is None:
                gevent.sleep(RETRY_SECONDS)
                continue
            try:
                # read() on a FIFO without a writer returns EOF at once; poll does not
                # report it readable until a writer has come: wait for one first.
                wait_read(fd)
                self.pump(fd, self.new_splitter())
            finally:
                os.close(fd)
            log.debug("input %s: writer closed %s; waiting for the next one", self.name, path)

    def _open(self, path):
        """Open the FIFO, creating it (0640) if missing; None (logged) if it cannot be."""
        try:
            os.mkfifo(path, 0o640)
            log.info("input %s: created FIFO %s", self.name, path)
        except FileExistsError:
            pass
        except OSError as error:
            log.error("input %s: cannot create FIFO %s: %s", self.name, path, error.strerror)
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            log.error("input %s: cannot open FIFO %s: %s", self.name, path, error.strerror)
            return None
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.close(fd)
            log.error("input %s: %s exists and is not a FIFO", self.name, path)
            return None
        try:
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.EBUSY, errno.EINVAL):
                raise
        return fd
