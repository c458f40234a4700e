"""What every input shares: turning read bytes into batches and handing them on under the
input's overflow policy (block, drop, spool) when the memory buffer is full."""

import os
import select
import time

import gevent
from gevent import GreenletExit
from gevent.socket import wait_read

from tailrabbit import logevents
from tailrabbit.framing import Framed, Framer
from tailrabbit.line import Batch

PIPE_CHUNK = 1 << 16
CHECK_EVERY = 1.0      # seconds: how long a missed wakeup could stall a pipe reader


class Input:
    """Base of the input kinds: `run()` is the greenlet body; `finished` marks a stdin EOF."""

    kind = None
    # A reload replacing a pipe reader (InputSet.replace, handover.py): the old reader
    # gives what it held unfinished to `handover_to`; the new one waits on
    # `handover_from` before its first read.
    handover_to = None
    handover_from = None
    # A stop keeps a FIFO's unfinished line for the next start; not when the input is
    # removed by a reload (InputSet.remove): then nobody reads that FIFO on.
    keeps_unfinished = True

    def __init__(self, settings, buffer, stats, spool=None):
        self.settings = settings
        self.name = settings.name
        self.buffer = buffer
        self.stats = stats.of(settings.name)
        self.spool = spool
        self.finished = False

    def run(self):
        raise NotImplementedError

    def new_framer(self, offset=0, want_offsets=False):
        return Framer(self.settings, offset, want_offsets)

    @property
    def stream(self):
        """What this reader reads, for a handover (FifoInput: the FIFO's path)."""
        return (self.kind, None)

    def first_framer(self):
        """The framer of a pipe reader's first read, begun with what the reader it
        replaces held unfinished, once that one stopped (never two readers of one pipe):
        (framer, what resuming it framed: for `pump` to hand on first). What a reader of
        another stream held (a reload changed the FIFO's path or the type) ended there:
        lines of their own, before this stream's (else b"first half|" of one pipe began
        the other pipe's first line)."""
        framer = self.new_framer()
        handover, self.handover_from = self.handover_from, None
        carry = handover.take() if handover is not None else None
        if carry is None:
            return framer, None
        if handover.stream not in (None, self.stream):
            return framer, self.ended(carry)
        return framer, framer.resume(carry)

    def ended(self, carry):
        """`carry` framed as a stream that ended after it (its own framer)."""
        return framed_alone(self.settings, carry)

    def submit_framed(self, framed, source=None):
        """Hand on what a Framer made of the bytes read; filtered lines are counted as
        read and filtered (read = published + filtered + dropped, in lines or events)."""
        if framed.filtered:
            self.stats.read += framed.filtered
            self.stats.filtered += framed.filtered
        self.submit(framed.lines, framed.offsets, framed.truncated, source, framed.end_offset)

    def submit(self, lines, offsets=None, truncated=None, source=None, end_offset=None):
        """Hand complete lines on; returns when they are buffered, spooled or dropped.

        Killed while waiting for room (a stop, a reload), the batch is read and counted
        but in no buffer: it goes to the spool, so a graceful stop loses nothing read.
        """
        if not lines:
            return
        self.stats.read += len(lines)
        if truncated:
            self.stats.truncated += len(truncated)
            logevents.line_truncated(input=self.name,
                                     max_line_bytes=self.settings.max_line_bytes)
        batch = Batch(self.name, lines, offsets, truncated, source, end_offset)
        try:
            self._hand_on(batch)
        except GreenletExit:
            self.spill(batch)
            raise

    def _hand_on(self, batch):
        policy = self.overflow
        spool = self.spool
        if spool is not None and policy == "spool":
            # Once anything is spooled, newer lines queue behind it on disk: order is kept.
            if spool.holds_lines() or not self.buffer.put(batch, block=False):
                spool.append(batch)
        elif spool is not None and spool.holds_lines() and policy == "drop":
            spool.append(batch)             # lines of an earlier run replay first
        elif policy == "drop":
            if not self.buffer.put(batch, block=False):
                self.stats.dropped += len(batch.lines)
                logevents.lines_dropped(input=self.name)
        else:
            # block: lines of an earlier run replay first, and this input waits behind
            # them (appending to the spool instead could drop past spool_max_bytes).
            while spool is not None and spool.holds_lines():
                spool.wait_replayed()
            self.buffer.put(batch)

    @property
    def overflow(self):
        return self.settings.overflow

    def spill(self, batch):
        """A batch read but not handed on when the input stops: to the spool (a file
        input has none: its checkpoint has not moved past the batch, it is read again)."""
        if self.spool is not None and batch.lines:
            self.spool.append(batch)

    def pump(self, fd, framer, read=None, chunk=PIPE_CHUNK, first=None):
        """Read `fd` to EOF, submitting complete lines (or events); then the unterminated
        tail and the event held. While an event is held, reads wait at most until its
        multiline_timeout, then it is published (the writer may never write again).

        Killed (a stop, a reload), what was read and not handed on (the unterminated
        tail, the held event) is gone from the pipe: see stopped_mid_stream. `first`:
        lines framed before the first read (first_framer), handed on first.
        """
        read = nb_read if read is None else read
        try:
            if first is not None:
                self.submit_framed(first)
            while True:
                due = framer.deadline()
                data = read(fd, chunk) if due is None else read(fd, chunk, due)
                if data is None:                      # the held event's time is up
                    framed = framer.expire()
                    if framed is not None:
                        self.submit_framed(framed)
                    continue
                if not data:
                    break
                self.submit_framed(framer.feed(data))
        except GreenletExit:
            self.stopped_mid_stream(fd, framer)
            raise
        self.submit_framed(framer.flush())

    def stopped_mid_stream(self, fd, framer):
        """Killed inside `pump` (a stop, a reload). What the framer holds unfinished goes
        to the reader replacing this one; at a stop it is a line of its own, spooled (a
        FIFO whose writer stays keeps it for the next start: FifoInput)."""
        if self.handover_to is not None:
            self.handover_to.give(framer.take_back(), self.stream)
            return
        self.spill_framed(framer.flush())

    def spill_framed(self, framed):
        """Framed lines read by a reader being stopped: to the spool (no put that could
        block while the stop waits)."""
        if framed.lines:
            self.stats.read += len(framed.lines)
            self.spill(Batch(self.name, framed.lines, truncated=framed.truncated))


def framed_alone(settings, carry):
    """A Carry (framing.py) as the whole of a stream that ended after it: its lines and
    events, the last unterminated one included."""
    framer = Framer(settings)
    return join_framed(framer.resume(carry), framer.flush())


def join_framed(*parts):
    """One Framed of several, in order (pipes: no offsets)."""
    lines, truncated, read, filtered = [], set(), 0, 0
    for part in parts:
        truncated.update(len(lines) + index for index in (part.truncated or ()))
        lines.extend(part.lines)
        read += part.read
        filtered += part.filtered
    return Framed(lines, None, truncated or None, None, read, filtered)


def wait_readable(fd, check_every=CHECK_EVERY, deadline=None):
    """Until `fd` (a pipe) is readable or its writer hung up: True; False once the
    monotonic `deadline` (if any) passed first.

    gevent's wait_read alone would wait forever if a wakeup were ever missed (libev keeps
    per-descriptor state, and FIFO readers close and reopen descriptors whose numbers get
    reused); a reader that stops reading blocks nginx. So every `check_every` seconds a
    real poll() looks for itself: a missed wakeup costs a second, never a blocked writer.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    while True:
        wait = check_every
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
            if wait <= 0:
                return bool(poller.poll(0))
        try:
            wait_read(fd, timeout=wait, timeout_exc=TimeoutError)
            return True
        except TimeoutError:
            if poller.poll(0):
                return True


def nb_read(fd, size, deadline=None):
    """Read a non-blocking pipe, waiting through the hub (and wait_readable) when empty;
    None if the monotonic `deadline` passed with nothing to read."""
    while True:
        try:
            return os.read(fd, size)
        except BlockingIOError:
            if not wait_readable(fd, deadline=deadline):
                return None


def blocking_read(fd, size, deadline=None):
    """For regular files, which never block: let other greenlets run, then read. In that
    order: a kill (a stop, a reload) at the yield must not throw away bytes already taken
    from the file offset, which stdin shares with nobody to give them back (a SIGTERM
    lost one 256 KiB chunk of a redirected file that way)."""
    gevent.sleep(0)
    return os.read(fd, size)
