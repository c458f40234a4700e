"""HostRing: the next host at once after a loss, backoff only after a whole round."""

import random

import pytest

from tailrabbit import config
from tailrabbit.ini import ConfigError
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
    assert ring.round()[0] == (1, ("b", 2))       # planned, but a failed just now
    fresh = HostRing(HOSTS)
    fresh.connected(2)
    fresh.planned()
    assert fresh.round()[0] == (0, ("a", 1))      # a planned reconnect: the first host


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


def test_host_order_is_read_from_the_config_and_a_bad_one_is_refused(tmp_path):
    path = tmp_path / "c.ini"
    path.write_text("[rabbitmq]\nhost = a, b:5673\nhost_order = Shuffle\n"
                    "[input:x]\ntype = stdin\n")
    assert config.load(str(path)).broker.host_order == "shuffle"
    path.write_text("[input:x]\ntype = stdin\n")
    assert config.load(str(path)).broker.host_order == "ordered"
    path.write_text("[rabbitmq]\nhost_order = random\n[input:x]\ntype = stdin\n")
    with pytest.raises(ConfigError, match=r"\[rabbitmq\] host_order: must be one of"):
        config.load(str(path))


def test_a_planned_round_tries_a_recently_failed_host_last():
    now = [100.0]
    ring = HostRing(HOSTS, clock=lambda: now[0])
    ring.connected(0)
    ring.lost(0, lived=60.0, stable_after=10.0)      # node a died
    ring.connected(1)
    ring.planned()                                   # a retry 1 s later: a goes last
    assert [h for _, h in ring.round()] == [("b", 2), ("c", 3), ("a", 1)]
    now[0] += 11.0                                   # later: a (back?) is preferred again
    assert [h for _, h in ring.round()] == HOSTS
    ring.refused(0)                                  # still down: last again
    assert [h for _, h in ring.round()][-1] == ("a", 1)
    ring.connected(1)
    assert ring.round()[0] == (1, ("b", 2))          # only planned rounds reorder
