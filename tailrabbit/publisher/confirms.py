"""Which published lines the broker has confirmed, from pipelined basic.ack/nack.

Delivery tags are counted here (they start at 1 on every new channel). Acks may come with
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
        self._in_flight = deque()  # (last_tag, batch), in publish order
        self.outstanding = 0       # lines published and not yet released

    def __len__(self):
        return len(self._in_flight)

    def add(self, batch):
        """Register a batch about to be written; its lines take the next tags."""
        self.next_tag += len(batch.lines)
        self._in_flight.append((self.next_tag - 1, batch))
        self.outstanding += len(batch.lines)

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
        released = []
        in_flight = self._in_flight
        while in_flight and in_flight[0][0] <= self.acked_upto:
            batch = in_flight.popleft()[1]
            self.outstanding -= len(batch.lines)
            released.append(batch)
        return released

    def batches(self):
        return [batch for _, batch in self._in_flight]

    def take_all(self):
        """Every batch not yet confirmed, in publish order (to publish again)."""
        batches = [batch for _, batch in self._in_flight]
        self._in_flight.clear()
        self.outstanding = 0
        return batches
