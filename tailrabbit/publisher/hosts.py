"""Which broker host to try next, and when to back off.

`host_order = ordered` tries the hosts as configured; `shuffle` shuffles them once per
process, so many shippers with the same host list spread over a cluster's nodes instead of
all piling onto the first one.

When a connection is lost, the next attempt starts with the host AFTER the one that failed
and goes round every host once, at once: on a cluster the connected node dying is the
common case, and the next node is up. Backoff (capped, jittered, see parking.Backoff) only
follows a full round in which nothing worked: every host refused, or every connection made
in the round was lost again before it lived `stable_after` seconds (a node that accepts and
drops would otherwise make a tight loop). A planned reconnect (refresh, reload, the retry
of a parked input) starts again with this process's first host: `ordered` means the first
host is preferred whenever it is up, and after a node restart `refresh` brings shippers back
to it, so a cluster's connections spread again (rejected: staying on the current host, which
left a restarted node without a single shipper for good).

Rejected: starting each attempt with the first host (a dead first node cost a connect
attempt, or a whole connect_timeout on a real network, on every reconnect, and put every
shipper on the same node); backing off before trying another host (the issue measured
0.25-0.5 s of stalled input per node loss for nothing).
"""

import random


class HostRing:
    def __init__(self, hosts, order="ordered", rng=random):
        self._config = (tuple(hosts), order)
        self.hosts = list(hosts)
        if order == "shuffle":
            rng.shuffle(self.hosts)
        self.start = 0              # index of the host to try first
        self._strikes = 0           # connections lost or refused since one lived long

    def round(self):
        """The hosts of one attempt, the first one first: (index, (host, port))."""
        count = len(self.hosts)
        return [((self.start + i) % count, self.hosts[(self.start + i) % count])
                for i in range(count)]

    def connected(self, index):
        self.start = index

    def lost(self, index, lived, stable_after):
        """The connection to hosts[index] was lost after `lived` seconds. Returns True
        when run() should back off before the next round."""
        self.start = (index + 1) % len(self.hosts)
        if lived >= stable_after:
            self._strikes = 0
            return False
        self._strikes += 1
        if self._strikes >= len(self.hosts):
            self._strikes = 0
            return True
        return False

    def planned(self):
        """A planned reconnect: the preferred (first) host first."""
        self.start = 0
        self._strikes = 0

    def round_failed(self):
        """No host of a whole round answered: back off (the caller sleeps)."""
        self._strikes = 0

    def update(self, hosts, order, rng=random):
        """A reload with other hosts: a new order; same hosts: keep where we are."""
        if (tuple(hosts), order) != self._config:
            self.__init__(hosts, order, rng)
