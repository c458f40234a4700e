"""The one bounded in-memory buffer between the input greenlets and the publisher.

It counts lines, not items (a batch holds many lines), across all inputs together, and
keeps one FIFO per input so the publisher can hold back one input (a queue it cannot
declare) while the others keep flowing. Order is kept per input, which is all the contract
promises. A batch is admitted while fewer than `capacity` lines are held, so the bound can
be passed by at most one batch (one read); that keeps a large read whole.
"""

from collections import deque

from gevent.event import Event


class LineBuffer:
    def __init__(self, capacity):
        self.capacity = capacity
        self.lines = 0
        self._queues = {}                 # input name -> deque of batches
        self._per_input = {}              # input name -> lines held
        self._not_empty = Event()
        self._not_full = Event()
        self._not_full.set()
        self._held_back = frozenset()     # inputs the publisher cannot publish for now
        self._rule_changed = Event()

    def full(self):
        return self.lines >= self.capacity

    def held(self, input_name):
        return self._per_input.get(input_name, 0)

    def hold_back(self, names):
        """Inputs whose queue cannot be declared: each may fill only a quarter of the
        buffer, so their lines go to their overflow policy and the others keep flowing."""
        self._held_back = frozenset(names)
        self._rule_changed.set()          # wake the waiters to re-check under the new rule
        self._rule_changed = Event()

    def _room_for(self, name, size):
        if self.lines >= self.capacity:
            return False
        # A held-back input's whole batch must fit its share, or one large read could
        # fill the buffer with lines that cannot leave and stall every other input.
        return name not in self._held_back or self.held(name) + size <= self.capacity // 4

    def put(self, batch, block=True, timeout=None):
        """Queue a batch; when full, wait for room if `block`, else return False."""
        while not self._room_for(batch.input, len(batch.lines)):
            if not block:
                return False
            # A held-back input over its share waits for the rule to change, not for room.
            event = self._not_full if self.lines >= self.capacity else self._rule_changed
            if not event.wait(timeout):
                return False
        self._queues.setdefault(batch.input, deque()).append(batch)
        n = len(batch.lines)
        self.lines += n
        self._per_input[batch.input] = self._per_input.get(batch.input, 0) + n
        if self.lines >= self.capacity:
            self._not_full.clear()
        self._not_empty.set()
        return True

    @property
    def readable(self):
        """An Event set while some batch may be held (for gevent.wait with other events)."""
        return self._not_empty

    def take(self, max_lines, skip=()):
        """Remove and return held batches, oldest first per input, up to ~max_lines lines.

        Inputs are visited in turn so one busy input cannot starve the others.
        Never blocks (the caller relies on that: nothing can switch greenlets between
        taking batches and registering them as in flight).
        """
        taken, count = [], 0
        while count < max_lines:
            progressed = False
            for name, queue in self._queues.items():
                if queue and name not in skip:
                    batch = queue.popleft()
                    taken.append(batch)
                    count += len(batch.lines)
                    self._per_input[name] -= len(batch.lines)
                    progressed = True
                    if count >= max_lines:
                        break
            if not progressed:
                break
        self.lines -= count
        if self.lines < self.capacity:
            self._not_full.set()
        if not any(q for n, q in self._queues.items() if n not in skip):
            self._not_empty.clear()
        return taken

    def remove_input(self, input_name):
        """Forget an input's queue; returns its held batches (for the spool)."""
        queue = self._queues.pop(input_name, deque())
        self.lines -= self._per_input.pop(input_name, 0)
        if self.lines < self.capacity:
            self._not_full.set()
        return list(queue)
