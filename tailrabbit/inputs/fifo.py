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
import select
import stat

import gevent
from gevent import GreenletExit

from tailrabbit import logevents
from tailrabbit.inputs.base import PIPE_CHUNK, Input, join_framed, wait_readable
from tailrabbit.inputs.handover import save_unfinished, take_unfinished

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_SIZE = 1 << 20
RETRY_SECONDS = 5.0


class FifoInput(Input):
    kind = "fifo"

    @property
    def stream(self):
        return (self.kind, self.settings.path)

    def run(self):
        path = self.settings.path
        fd = None
        first = True
        while True:
            if fd is None:
                fd = self._open(path)
                if fd is None:
                    gevent.sleep(RETRY_SECONDS)
                    continue
            try:
                framer, framed = self._resume(fd) if first else (self.new_framer(), None)
                first = False
                try:
                    if framed is not None:
                        self.submit_framed(framed)
                    # read() on a FIFO without a writer returns EOF at once; poll does
                    # not report it readable until a writer has come: wait for one first.
                    wait_readable(fd)
                except GreenletExit:
                    self.stopped_mid_stream(fd, framer)
                    raise
                self.pump(fd, framer)
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

    def _resume(self, fd):
        """The first framer: begun with the unfinished line of the reader this one
        replaces (a reload), or of the last run (a stop kept it: handover.py). A kept line
        continues only if a writer holds the FIFO now; with none, its writer finished
        without a last "\n" and it is a line of its own. (framer, framed or None)."""
        framer, framed = self.first_framer()
        kept = take_unfinished(self.spool.directory) if self.spool is not None else None
        if kept is None:
            return framer, framed
        if kept.path is not None and kept.path != self.settings.path:
            # read from another FIFO (the path changed while stopped): it ended there
            logevents.unfinished_line_resumed(
                input=self.name, bytes=len(kept.data),
                reason=f"kept from {kept.path}, not this FIFO: a line of its own")
            return framer, join_framed(*[part for part in (self.ended(kept), framed)
                                         if part is not None])
        framed = framer.resume(kept)
        try:
            data = os.read(fd, PIPE_CHUNK)
        except BlockingIOError:
            data = None                     # a writer holds the FIFO: the line goes on
        logevents.unfinished_line_resumed(
            input=self.name, bytes=len(kept.data),
            reason="no writer holds the FIFO: a line of its own" if data == b""
            else "its writer goes on")
        if data is None:
            return framer, framed
        return framer, join_framed(framed, framer.feed(data) if data else framer.flush())

    def stopped_mid_stream(self, fd, framer):
        """A stop (not a reload) while reading: if a writer still holds the FIFO, what the
        framer holds unfinished is kept for the next start and the pipe's unread bytes
        stay in the pipe, which lives on while the writer holds it; if no writer does,
        the pipe dies with our descriptor: its last bytes are read now and spooled."""
        if self.handover_to is None and self.spool is not None:
            if self.keeps_unfinished and writer_holds(fd):
                carry = framer.take_back()
                if carry.data or carry.skipping:
                    try:
                        save_unfinished(self.spool.directory, carry,
                                        self.settings.path)
                        logevents.unfinished_line_kept(input=self.name,
                                                       bytes=len(carry.data),
                                                       path=self.settings.path)
                        return
                    except OSError as error:
                        logevents.unfinished_line_not_kept(input=self.name,
                                                           reason=error.strerror or error)
                        self.spill_framed(framer.resume(carry))
            else:
                self.spill_framed(drain(fd, framer))
        super().stopped_mid_stream(fd, framer)

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


def writer_holds(fd):
    """True while a writer holds the FIFO (no hang-up reported; we read from it, so a
    writer came)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return not any(events & select.POLLHUP for _fd, events in poller.poll(0))


def drain(fd, framer, limit=PIPE_SIZE * 2):
    """Read what a FIFO without writers still holds (at most `limit` bytes: its size) and
    frame it to the end: every line, the last one unterminated or not."""
    framed, taken = [], 0
    while taken < limit:
        try:
            data = os.read(fd, PIPE_CHUNK)
        except BlockingIOError:
            break
        if not data:
            break
        taken += len(data)
        framed.append(framer.feed(data))
    framed.append(framer.flush())
    return join_framed(*framed)

