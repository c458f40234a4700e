"""The confirm trackers of every input, one per input's channel (confirms.py)."""

from tailrabbit.publisher.confirms import ConfirmTracker


class InputTrackers:
    """One ConfirmTracker per input: each input publishes on a channel of its own (whose
    delivery tags start at 1), so a nack, a return or a channel error of one input never
    touches the confirms of another. `take(name)` forgets an input's channel: its later
    acks and nacks mean nothing (its lines are already set aside to publish again), which
    is also what keeps the ack that follows a returned line from confirming it. A nack
    keeps it (`nack`)."""

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

    def take_acked_head_of(self, name):
        """`name`'s acked lines at the front of its oldest batch (take_acked_head)."""
        tracker = self._trackers.get(name)
        return tracker.take_acked_head() if tracker is not None else []

    def take(self, name):
        """Every unconfirmed batch of `name`, in publish order; its channel is forgotten."""
        tracker = self._trackers.pop(name, None)
        return tracker.take_all() if tracker is not None else []

    def nack(self, name, tag, multiple, set_aside):
        """(released, held) of `name`'s tracker (ConfirmTracker.nack); its channel is kept
        (the acks of its lines still count) and `set_aside(name, batches)` gets the lines
        to publish again once every tag of it is acked or nacked."""
        tracker = self._trackers.get(name)
        if tracker is None:
            return [], 0
        return tracker.nack(tag, multiple, lambda batches: set_aside(name, batches))

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

    def take_acked_heads(self):
        """Each input's acked lines at the front of its oldest batch (ConfirmTracker.
        take_acked_head): to release before take_all after a connection loss."""
        return [head for tracker in self._trackers.values()
                for head in tracker.take_acked_head()]

    def take_all(self):
        """Every unconfirmed batch, each input's in publish order."""
        batches = [batch for tracker in self._trackers.values()
                   for batch in tracker.take_all()]
        self._trackers = {}
        return batches
