"""Inputs the publisher cannot publish for now, why, and when to try them again.

An input is parked when its queue cannot be declared (PRECONDITION_FAILED, a missing
exchange to bind to, a classic queue whose node is down), or when its route fails while
publishing: the broker nacks its lines (a full queue with `x-overflow = reject-publish`),
returns them as unroutable, or closes its channel (an exchange deleted under it, a line over
`max_message_size`). A parked input's lines wait: the buffer holds it to a quarter of its
room (so its overflow policy applies) and the publisher neither takes nor resends them;
the other inputs keep flowing. Each input has its own backoff; it is reset only when a line
of that input is confirmed again, so an input that keeps failing is retried less and less
often (up to the cap) while a repaired one starts over.

Rejected: retrying a parked input by publishing its lines again at once (the failure
repeats, and before this module it took every input down with it: reconnect, resend,
fail, up to four copies of the other inputs' lines); a retry on a side channel of the
same connection (py-amqp's synchronous calls would read the socket beside the session's
reader greenlet). A retry is a planned reconnect, which waits for every confirm of the
other inputs and so repeats none of their lines.
"""

import random
import time


class Backoff:
    """Capped exponential backoff with jitter (so many tailrabbits do not reconnect in step)."""

    def __init__(self, first, cap):
        self.first, self.cap = first, cap
        self.current = first

    def next(self):
        delay = self.current * random.uniform(0.5, 1.0)
        self.current = min(self.current * 2, self.cap)
        return delay

    def reset(self):
        self.current = self.first


class Parking:
    """name -> reason for every parked input, and the earliest retry among them."""

    def __init__(self, first, cap, clock=time.monotonic):
        self.first, self.cap = first, cap
        self.clock = clock
        self.reasons = {}           # input name -> why it is parked (for logs)
        self.retry_at = None        # monotonic time of the next retry, None when none
        self._backoff = {}          # input name -> Backoff, until a line is confirmed

    def __contains__(self, name):
        return name in self.reasons

    def __bool__(self):
        return bool(self.reasons)

    def park(self, name, reason, first=None):
        """Park `name`; returns the delay before its retry. Parking again while parked
        keeps the first reason and retry time."""
        if name in self.reasons:
            return max(0.0, self.retry_at - self.clock())
        backoff = self._backoff.get(name)
        if backoff is None:
            backoff = self._backoff[name] = Backoff(first or self.first, self.cap)
        delay = backoff.next()
        self.reasons[name] = reason
        at = self.clock() + delay
        self.retry_at = at if self.retry_at is None else min(self.retry_at, at)
        return delay

    def retry_all(self):
        """A reconnect retries every parked input (their backoffs are kept)."""
        self.reasons = {}
        self.retry_at = None

    def confirmed(self, name):
        """A line of `name` was confirmed: its route works, its next failure starts over."""
        if name in self._backoff and name not in self.reasons:
            del self._backoff[name]
