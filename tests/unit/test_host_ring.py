"""HostRing: the next host at once after a loss, backoff only after a whole round."""

import random

from tailrabbit.publisher.hosts import HostRing

HOSTS = [("a", 1), ("b", 2), ("c", 3)]


def test_a_lost_connection_starts_the_next_round_with_the_next_host():
    ring = HostRing(HOSTS)
    assert [h for _, h in ring.round()] == HOSTS
    ring.connected(0)
    assert ring.lost(0, lived=60.0, stable_after=10.0) is False
    assert [h for _, h in ring.round()] == [("b", 2), ("c", 3), ("a", 1)]
    ring.connected(1)
    ring.planned()
    assert ring.round()[0] == (0, ("a", 1))       # a planned reconnect: the first host


def test_backoff_only_after_every_host_dropped_us_quickly():
    ring = HostRing(HOSTS)
    assert ring.lost(0, 0.1, 10.0) is False
    assert ring.lost(1, 0.1, 10.0) is False
    assert ring.lost(2, 0.1, 10.0) is True        # a full round of short-lived connections
    assert ring.lost(0, 0.1, 10.0) is False       # counting starts over


def test_shuffle_gives_each_process_its_own_order_and_reload_keeps_it():
    orders = {tuple(HostRing(HOSTS, "shuffle", random.Random(seed)).hosts)
              for seed in range(20)}
    assert len(orders) > 1 and all(sorted(order) == HOSTS for order in orders)
    ring = HostRing(HOSTS, "shuffle", random.Random(1))
    before = list(ring.hosts)
    ring.connected(2)
    ring.update(tuple(HOSTS), "shuffle")
    assert ring.hosts == before and ring.start == 2
    ring.update(tuple(HOSTS[:2]), "ordered")
    assert ring.hosts == HOSTS[:2] and ring.start == 0
