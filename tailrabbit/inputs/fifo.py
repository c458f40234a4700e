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
import os
import stat

import gevent

from tailrabbit import logevents
from tailrabbit.inputs.base import Input, wait_readable

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_SIZE = 1 << 20
RETRY_SECONDS = 5.0


class FifoInput(Input):
    kind = "fifo"

    def run(self):
        path = self.settings.path
        fd = None
        while True:
            if fd is None:
                fd = self._open(path)
                if fd is None:
                    gevent.sleep(RETRY_SECONDS)
                    continue
            try:
                # read() on a FIFO without a writer returns EOF at once; poll does not
                # report it readable until a writer has come: wait for one first.
                wait_readable(fd)
                self.pump(fd, self.new_framer())
                # The writer closed. The next reader opens BEFORE this one closes: a
                # writer that reopened meanwhile (nginx -s reopen) holds the pipe, and with
                # no reader at all its next write would fail with EPIPE and lose the line.
                next_fd = self._open(path)
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
            fd = next_fd
            logevents.fifo_writer_closed(input=self.name, path=path)

    def _open(self, path):
        """Open the FIFO, creating it (0640) if missing; None (logged) if it cannot be."""
        try:
            os.mkfifo(path, 0o640)
            logevents.fifo_created(input=self.name, path=path)
        except FileExistsError:
            pass
        except OSError as error:
            self._cannot_open(path, f"cannot create FIFO {path}: {error.strerror}")
            return None
        try:     # never open what is not a FIFO: a device's open can have effects
            problem = untrusted(os.stat(path), path)
            if problem:
                self._cannot_open(path, problem)
                return None
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            self._cannot_open(path, f"cannot open FIFO {path}: {error.strerror}")
            return None
        problem = untrusted(os.fstat(fd), path)     # replaced since the stat?
        if problem:
            os.close(fd)
            self._cannot_open(path, problem)
            return None
        try:
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.EBUSY, errno.EINVAL):
                raise
        return fd

    def _cannot_open(self, path, reason):
        """Retried every RETRY_SECONDS while the cause lasts: the event is rate-limited."""
        logevents.fifo_cannot_open(input=self.name, path=path, reason=reason)


def untrusted(st, path):
    """Why the FIFO at `path` must not be read, or None. Whoever can write into it can put
    lines into our queues: it must be a FIFO, owned by us (or root), not writable by
    others. Fix it with chown/chmod; tailrabbit creates it itself 0640 when missing."""
    if not stat.S_ISFIFO(st.st_mode):
        return f"{path} exists and is not a FIFO; not reading it"
    if st.st_uid not in (os.geteuid(), 0):
        return (f"FIFO {path} is owned by uid {st.st_uid}, not by us (uid {os.geteuid()}) "
                f"or root; not reading it (chown it, or remove it and let tailrabbit "
                f"create it)")
    if st.st_mode & stat.S_IWOTH:
        return (f"FIFO {path} is writable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"not reading it (chmod o-w it)")
    return None
