"""Which published lines the broker has confirmed, from pipelined basic.ack/nack.

Delivery tags are counted here (they start at 1 on every new channel), one per message:
a Batch of a batched input is fewer messages than lines, and the publisher says how many.
`outstanding` stays in lines (the confirm window and the stats are about lines). Acks may come with
`multiple` or one tag at a time, and across queues out of order; a batch is released only
when every tag up to its last one is acked, so releases happen in publish order and a file
checkpoint can never jump over an unconfirmed line.
"""

from collections import deque


class ConfirmTracker:
    def __init__(self):
        self.next_tag = 1          # the tag the broker will give the next publish
        self.acked_upto = 0        # every tag <= this is acked
        self._acked_above = set()  # single acks beyond acked_upto
        self._in_flight = deque()  # (last_tag, batch, first_tag), in publish order
        self.outstanding = 0       # lines published and not yet released
        self.outstanding_bytes = 0  # their bytes: long lines must not pile up in memory

    def __len__(self):
        return len(self._in_flight)

    def add(self, batch, messages=None):
        """Register a batch about to be written; its messages take the next tags: one per
        line, or `messages` (what the encoder made of it: fewer with batch_lines > 1)."""
        first = self.next_tag
        self.next_tag += len(batch.lines) if messages is None else messages
        self._in_flight.append((self.next_tag - 1, batch, first))
        self.outstanding += len(batch.lines)
        self.outstanding_bytes += batch.nbytes

    def ack(self, tag, multiple):
        """Record an ack; returns the batches now fully confirmed, in order."""
        if multiple:
            if tag > self.acked_upto:
                self.acked_upto = tag
                self._acked_above = {t for t in self._acked_above if t > tag}
        else:
            self._acked_above.add(tag)
        above = self._acked_above
        while self.acked_upto + 1 in above:
            self.acked_upto += 1
            above.discard(self.acked_upto)
        return self._release_acked()

    def _release_acked(self):
        released = []
        in_flight = self._in_flight
        while in_flight and in_flight[0][0] <= self.acked_upto:
            batch = in_flight.popleft()[1]
            self.outstanding -= len(batch.lines)
            self.outstanding_bytes -= batch.nbytes
            released.append(batch)
        return released

    def batches(self):
        return [item[1] for item in self._in_flight]

    def oldest_timestamp(self):
        """Read time of the oldest batch awaiting its confirm, or None (the lag metrics).
        Batches are released in publish order, so it is the first one."""
        return self._in_flight[0][1].timestamp if self._in_flight else None

    def take_from(self, tag):
        """(taken, released): the lines of delivery tag `tag` and later ones, in publish
        order (a nack of
        `tag`: to publish again). Earlier ones stay: the broker stored them and their
        acks may still come (a queue at its reject-publish limit nacks a line at once and
        acks the ones it took after their fsync). A batch of one message per line that
        holds `tag` is split there when its origin allows (Batch.split)."""
        tag = max(tag, self.acked_upto + 1)     # a nack never takes back an ack
        kept, taken = deque(), []
        for last, batch, first in self._in_flight:
            if last < tag:
                kept.append((last, batch, first))
                continue
            parts = (batch.split(tag - first)
                     if first < tag and last - first + 1 == len(batch.lines) else None)
            if parts is not None:                 # its lines before `tag` were stored
                head, batch = parts
                kept.append((tag - 1, head, first))
            taken.append(batch)
            self.outstanding -= len(batch.lines)
            self.outstanding_bytes -= batch.nbytes
        self._in_flight = kept
        return taken, self._release_acked()     # a head whose tags were acked already

    def take_all(self):
        """Every batch not yet confirmed, in publish order (to publish again)."""
        batches = [item[1] for item in self._in_flight]
        self._in_flight.clear()
        self.outstanding = self.outstanding_bytes = 0
        return batches


class InputTrackers:
    """One ConfirmTracker per input: each input publishes on a channel of its own (whose
    delivery tags start at 1), so a nack, a return or a channel error of one input never
    touches the confirms of another. `take(name)` forgets an input's channel: its later
    acks and nacks mean nothing (its lines are already set aside to publish again), which
    is also what keeps the ack that follows a returned line from confirming it."""

    def __init__(self):
        self._trackers = {}

    @property
    def outstanding(self):
        return sum(tracker.outstanding for tracker in self._trackers.values())

    @property
    def outstanding_bytes(self):
        return sum(tracker.outstanding_bytes for tracker in self._trackers.values())

    def add(self, batch, messages=None):
        tracker = self._trackers.get(batch.input)
        if tracker is None:
            tracker = self._trackers[batch.input] = ConfirmTracker()
        tracker.add(batch, messages)

    def ack(self, name, tag, multiple):
        tracker = self._trackers.get(name)
        return tracker.ack(tag, multiple) if tracker is not None else []

    def outstanding_of(self, name):
        tracker = self._trackers.get(name)
        return tracker.outstanding if tracker is not None else 0

    def take(self, name):
        """Every unconfirmed batch of `name`, in publish order; its channel is forgotten."""
        tracker = self._trackers.pop(name, None)
        return tracker.take_all() if tracker is not None else []

    def take_from(self, name, tag):
        """(taken, released) of `name`'s tracker (ConfirmTracker.take_from); its channel
        is kept (the acks of its earlier lines still count)."""
        tracker = self._trackers.get(name)
        return tracker.take_from(tag) if tracker is not None else ([], [])

    def batches(self):
        return [batch for tracker in self._trackers.values() for batch in tracker.batches()]

    def oldest_timestamps(self):
        """{input name: read time of its oldest batch awaiting a confirm}."""
        oldest = {}
        for name, tracker in self._trackers.items():
            timestamp = tracker.oldest_timestamp()
            if timestamp is not None:
                oldest[name] = timestamp
        return oldest

    def take_all(self):
        """Every unconfirmed batch, each input's in publish order."""
        batches = [batch for tracker in self._trackers.values()
                   for batch in tracker.take_all()]
        self._trackers = {}
        return batches
