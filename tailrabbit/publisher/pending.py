"""What the publisher holds and has not delivered, asked from outside its greenlet: the
drain on a stop (settled), a reload removing an input (unconfirmed_of), a stop that
spools what is left (take_unconfirmed), the lag metrics (oldest_unconfirmed).

A mixin of Publisher, which owns the state read here: `buffer`, `_trackers` (published,
awaiting confirms; replaced at every connection) and `_resend` (set aside to publish
again first). Kept apart so loop.py holds only the publish loop.
"""

from tailrabbit.publisher.trackers import InputTrackers


class PendingLines:
    def _keep_unconfirmed(self):
        """The connection is gone (or run() is killed): the acked head of a batch acked
        in part is released, never published again; every line not confirmed is kept to
        go again first, in order, on the next connection (or to a spool at a stop)."""
        self._release(self._trackers.take_acked_heads())
        self._resend = self._trackers.take_all() + self._resend
        self._trackers = InputTrackers()

    def take_unconfirmed(self):
        """After run() was killed: every batch not confirmed, oldest first, forgotten."""
        batches = self._trackers.take_all() + self._resend
        self._resend = []
        return batches

    def settled(self):
        """Nothing buffered, nothing awaiting a confirm: every line read is delivered."""
        return not self.buffer.lines and not self._trackers.outstanding and not self._resend

    def unconfirmed_of(self, name):
        """Lines of input `name` published (or to be published again) and not confirmed."""
        return self._trackers.outstanding_of(name) + sum(
            len(batch.lines) for batch in self._resend if batch.input == name)

    def oldest_unconfirmed(self):
        """{input name: read time of its oldest line published, or set aside to publish
        again, and not confirmed} (the lag metrics, at scrape time: the set-aside list is
        about a confirm window at most)."""
        oldest = self._trackers.oldest_timestamps()
        for batch in self._resend:
            if batch.input not in oldest or batch.timestamp < oldest[batch.input]:
                oldest[batch.input] = batch.timestamp
        return oldest
