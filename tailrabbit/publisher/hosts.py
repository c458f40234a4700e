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
left a restarted node without a single shipper for good). A host that failed within the
last AVOID_FOR seconds goes last in a planned round: a dead host would otherwise cost a
refused connect, or a whole connect_timeout on a real network, at every retry.

Rejected: starting each attempt with the first host (a dead first node cost a connect
attempt, or a whole connect_timeout on a real network, on every reconnect, and put every
shipper on the same node); backing off before trying another host (the issue measured
0.38-0.50 s per node loss, measured on a 3-node cluster, against 0.01 s now).
"""

import random
import time

AVOID_FOR = 10.0        # seconds a failed host goes last in planned rounds


class HostRing:
    def __init__(self, hosts, order="ordered", rng=random, clock=time.monotonic):
        self._config = (tuple(hosts), order)
        self.clock = clock
        self._failed = {}           # index -> when it last refused or dropped us
        self._planned = False
        self.hosts = list(hosts)
        if order == "shuffle":
            rng.shuffle(self.hosts)
        self.start = 0              # index of the host to try first
        self._strikes = 0           # connections lost or refused since one lived long

    def round(self):
        """The hosts of one attempt, the first one first: (index, (host, port))."""
        count = len(self.hosts)
        order = [(self.start + i) % count for i in range(count)]
        if self._planned:
            now = self.clock()
            order.sort(key=lambda i: now - self._failed.get(i, -AVOID_FOR) < AVOID_FOR)
        return [(i, self.hosts[i]) for i in order]

    def refused(self, index):
        self._failed[index] = self.clock()

    def connected(self, index):
        self.start = index
        self._planned = False
        self._failed.pop(index, None)

    def lost(self, index, lived, stable_after):
        """The connection to hosts[index] was lost after `lived` seconds. Returns True
        when run() should back off before the next round."""
        self.start = (index + 1) % len(self.hosts)
        self._failed[index] = self.clock()
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
        self._planned = True

    def round_failed(self):
        """No host of a whole round answered: back off (the caller sleeps)."""
        self._strikes = 0

    def update(self, hosts, order, rng=random):
        """A reload with other hosts: a new order; same hosts: keep where we are."""
        if (tuple(hosts), order) != self._config:
            self.__init__(hosts, order, rng, self.clock)
