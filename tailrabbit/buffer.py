"""The one bounded in-memory buffer between the input greenlets and the publisher.

It counts lines, not items (a batch holds many lines), across all inputs together, and
keeps one FIFO per input so the publisher can hold back one input (a queue it cannot
declare) while the others keep flowing. Order is kept per input, which is all the contract
promises. A batch is admitted while fewer than `capacity` lines are held, so the bound can
be passed by at most one batch (one read); that keeps a large read whole.

It counts bytes too (`capacity_bytes`, `buffer_bytes` in the config): a line bound alone
lets a burst of long lines take the host's memory (100,000 lines of 1 MiB). The buffer is
full at either bound, and the byte bound is passed the same way, by at most one batch: a
batch larger than the whole bound is still admitted into an empty buffer, or it would wait
forever. A batch's size is summed once, at put, and kept beside it in the queue so take()
subtracts exactly what put() added without touching the lines again (a Batch attribute
was the other choice; the pair keeps line.py ignorant of the buffer). Line bodies only
are counted: the per-object overhead of a short line is what the line bound is for.
"""

from collections import deque

from gevent.event import Event

TAKE_BYTES = 4 << 20       # take() returns about this many bytes at most (one socket write)
NO_BYTE_BOUND = 1 << 62    # capacity_bytes=None (an int: float("inf") // 4 is nan)


class LineBuffer:
    def __init__(self, capacity, capacity_bytes=None):
        self.capacity = capacity
        self.capacity_bytes = NO_BYTE_BOUND if capacity_bytes is None else capacity_bytes
        self.lines = 0
        self.bytes = 0
        self._queues = {}                 # input name -> deque of (batch, its bytes)
        self._per_input = {}              # input name -> lines held
        self._bytes_per_input = {}        # input name -> bytes held
        self._not_empty = Event()
        self._not_full = Event()
        self._not_full.set()
        self._held_back = frozenset()     # inputs the publisher cannot publish for now
        self._rule_changed = Event()

    def full(self):
        return self.lines >= self.capacity or self.bytes >= self.capacity_bytes

    def held(self, input_name):
        return self._per_input.get(input_name, 0)

    def held_bytes(self, input_name):
        return self._bytes_per_input.get(input_name, 0)

    def oldest_timestamps(self):
        """{input name: read time of its oldest held batch} (the lag metrics). Each
        input's queue is in read order (a spool replays before newer lines), so its first
        batch is its oldest: one look per input, whatever the buffer holds."""
        return {name: queue[0][0].timestamp for name, queue in self._queues.items() if queue}

    def hold_back(self, names):
        """Inputs whose queue cannot be declared: each may fill only a quarter of the
        buffer (in lines and in bytes), so their lines go to their overflow policy and the
        others keep flowing."""
        self._held_back = frozenset(names)
        self._rule_changed.set()          # wake the waiters to re-check under the new rule
        self._rule_changed = Event()

    def _room_for(self, name, size, nbytes):
        if self.full():
            return False
        # A held-back input's whole batch must fit its share, or one large read could
        # fill the buffer with lines that cannot leave and stall every other input.
        return name not in self._held_back or (
            self.held(name) + size <= self.capacity // 4
            and self.held_bytes(name) + nbytes <= self.capacity_bytes // 4)

    def put(self, batch, block=True, timeout=None):
        """Queue a batch; when full, wait for room if `block`, else return False."""
        n, nbytes = len(batch.lines), batch.nbytes
        while not self._room_for(batch.input, n, nbytes):
            if not block:
                return False
            # A held-back input over its share waits for the rule to change, not for room.
            event = self._not_full if self.full() else self._rule_changed
            if not event.wait(timeout):
                return False
        self._queues.setdefault(batch.input, deque()).append((batch, nbytes))
        self.lines += n
        self.bytes += nbytes
        self._per_input[batch.input] = self._per_input.get(batch.input, 0) + n
        self._bytes_per_input[batch.input] = self._bytes_per_input.get(batch.input, 0) + nbytes
        if self.full():
            self._not_full.clear()
        self._not_empty.set()
        return True

    @property
    def readable(self):
        """An Event set while some batch may be held (for gevent.wait with other events)."""
        return self._not_empty

    def take(self, max_lines, skip=(), max_bytes=TAKE_BYTES):
        """Remove and return held batches, oldest first per input, up to ~max_lines lines
        and ~max_bytes bytes (at least one batch: one may be larger).

        Inputs are visited in turn so one busy input cannot starve the others.
        Never blocks (the caller relies on that: nothing can switch greenlets between
        taking batches and registering them as in flight). The byte cap keeps one socket
        write, and the copy the publisher joins for it, small when lines are long.
        """
        taken, count, nbytes = [], 0, 0
        while count < max_lines and nbytes < max_bytes:
            progressed = False
            for name, queue in self._queues.items():
                if queue and name not in skip:
                    batch, size = queue.popleft()
                    taken.append(batch)
                    count += len(batch.lines)
                    nbytes += size
                    self._per_input[name] -= len(batch.lines)
                    self._bytes_per_input[name] -= size
                    progressed = True
                    if count >= max_lines or nbytes >= max_bytes:
                        break
            if not progressed:
                break
        self.lines -= count
        self.bytes -= nbytes
        if not self.full():
            self._not_full.set()
        if not any(q for n, q in self._queues.items() if n not in skip):
            self._not_empty.clear()
        return taken

    def remove_input(self, input_name):
        """Forget an input's queue; returns its held batches (for the spool)."""
        queue = self._queues.pop(input_name, deque())
        self.lines -= self._per_input.pop(input_name, 0)
        self.bytes -= self._bytes_per_input.pop(input_name, 0)
        if not self.full():
            self._not_full.set()
        return [batch for batch, _ in queue]
