"""What the session's reader greenlet reports, per input (each has its own channel):
acks release batches, a nack, a return or a closed channel parks that input alone;
connection.blocked pauses every input. A mixin of Publisher, kept apart so the publish loop
reads on its own; these methods run in the reader greenlet and never write to the socket.
Releasing and parking, their effects, live here too (the publish loop parks as well).
"""

import time

from tailrabbit import logevents
from tailrabbit.publisher.session import describe

# A nack this soon after connecting is most likely a quorum queue electing a leader (its
# old leader died with the node we were on): the broker nacks what a new channel publishes
# until the election is over, a fraction of a second. Retrying after ROUTE_RETRY_FIRST
# (2 s) made delivery resume 1.3-2 s after a node loss instead of about 0.4 s.
YOUNG_SESSION = 5.0
ELECTION_RETRY_FIRST = 0.25


class BrokerEvents:
    def _live(self):
        session = self._session
        return session is not None and not session.failed.is_set()

    def on_ack(self, name, delivery_tag, multiple):
        if not self._live():
            return      # frames after a failure mean nothing: all is published again
        released = self._trackers.ack(name, delivery_tag, multiple)
        if released:
            self._release(released)
        self._acked.set()

    def on_nack(self, name, delivery_tag, multiple):
        """Not stored (a full queue with x-overflow = reject-publish; the lines in flight
        to a classic queue whose node died): never counted as confirmed; the input is
        parked, its lines not acked go again, in order, when retried (its channel's tags
        are tracked until each is acked or nacked: a line after the nacked one may be
        stored anyway)."""
        if not self._live():
            return
        if name in self._parking:       # a later nack on the parked input's channel
            released, _ = self._trackers.nack(name, delivery_tag, multiple,
                                              self._set_aside)
            if released:
                self._release(released)
            self._acked.set()           # the confirm window may have room again
            return
        opened = getattr(self._session, "opened_at", None) or 0.0
        young = time.monotonic() - opened < YOUNG_SESSION
        self._park(name, f"the broker refused (nack) delivery tag {delivery_tag}"
                   f"{' and earlier' if multiple else ''} (a full queue, a quorum "
                   f"queue electing a leader, the node of a classic queue gone?)",
                   *((ELECTION_RETRY_FIRST,) if young else ()),
                   nack=(delivery_tag, multiple))

    def on_return(self, name, exc, exchange, routing_key, message):
        """An unroutable line (its queue deleted or unbound). The broker acks it right
        after returning it: parking forgets the input's channel first, so that ack
        confirms nothing; the retry declares and binds the queue again."""
        if name in self.stats.inputs:
            self.stats.of(name).returned += 1
        if self._live() and name in self._parking:     # kept for acks since a nack:
            self._set_aside(name, self._take_input(name))   # that ack confirms nothing
            self._acked.set()
        elif self._live():
            self._park(name, f"a line came back unroutable: exchange {exchange!r}, "
                       f"routing key {routing_key!r} ({describe(exc)})")

    def on_channel_closed(self, name, error):
        """The broker closed this input's channel (its exchange is gone, a line is over
        max_message_size, ...): only this input is affected."""
        if self._live() and name in self._parking:     # no ack will come on it now
            self._set_aside(name, self._take_input(name))
            self._acked.set()
        elif self._live():
            self._park(name, f"the broker closed its channel: {describe(error)}")

    def on_blocked(self, reason):
        logevents.connection_blocked(reason=reason)
        self.stats.connection_state = "blocked"

    def on_unblocked(self):
        logevents.connection_unblocked()
        self.stats.connection_state = f"connected to {self._session.address}" \
            if self._session else "connected"
        self._unblocked.set()

    # ---- their effects (called here and by the publish loop) -------------------------

    def _set_aside(self, name, batches):
        """Put `batches` of `name` (older than any of its batches set aside already) to
        publish again, before those: each input's lines keep their order."""
        if not batches:
            return
        at = next((i for i, batch in enumerate(self._resend) if batch.input == name),
                  len(self._resend))
        self._resend[at:at] = batches

    def _release(self, batches):
        """Confirmed batches: counted, their input's route proven, checkpoints told; a
        batch's riders (stored after a refused line of it) right after it."""
        for batch in batches:
            self.stats.of(batch.input).confirmed += len(batch.lines)
            self._parking.confirmed(batch.input)
            if self.on_confirmed is not None:
                self.on_confirmed(batch)
            if batch.riders:
                self._release(batch.riders)
        self.progress.set()

    def _take_input(self, name):
        """Every line of `name` not confirmed, its channel forgotten; the acked head of a
        batch acked in part is released first (it went again: a duplicate of lines the
        broker confirmed)."""
        self._release(self._trackers.take_acked_head_of(name))
        return self._trackers.take(name)

    def _park(self, name, reason, first=None, nack=None):
        """Hold `name` back: its unconfirmed lines wait, in order, before its buffered
        ones; nothing of it is published until a reconnect retries it. `first`: its
        first retry delay (None: parking's default, a route failure's). `nack`: (delivery
        tag, multiple) of a nack; the lines before it keep waiting for their acks, and
        the channel's later acks still count: only the lines not stored go again
        (without this, every retry against a queue at its reject-publish limit published
        its head again: 250 messages, 50 distinct lines, in 5 rounds). Else its channel
        is forgotten (a return's ack confirms nothing)."""
        if name in self._parking:
            return
        if nack is None:
            taken, released = self._take_input(name), []
            self._set_aside(name, taken)
            count = sum(len(b.lines) for b in taken)
        else:
            released, count = self._trackers.nack(name, *nack, self._set_aside)
        delay = self._parking.park(name, reason, first)
        self.buffer.hold_back(self._parking.reasons)
        logevents.input_parked(input=name, reason=reason, delay=delay, count=count)
        if released:                    # lines before the nacked one, acked already
            self._release(released)
        self._acked.set()               # the confirm window may have room again
