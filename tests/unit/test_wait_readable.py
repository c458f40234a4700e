"""A pipe reader never waits forever on a missed wakeup: a real poll() looks every
CHECK_EVERY seconds (the hub's wait is replaced here by one that never wakes)."""

import os
import time

import gevent

from tailrabbit.inputs import base


def test_a_missed_wakeup_costs_a_check_interval_not_a_blocked_writer(monkeypatch):
    def never_wakes(fd, timeout=None, timeout_exc=None):
        gevent.sleep(timeout)
        raise timeout_exc
    monkeypatch.setattr(base, "wait_read", never_wakes)
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    try:
        os.write(write_end, b"line\n")
        started = time.monotonic()
        assert base.nb_read(read_end, 100) == b"line\n"    # data already there: no wait
        gevent.spawn_later(0.05, os.write, write_end, b"later\n")
        assert base.nb_read(read_end, 100) == b"later\n"
        assert time.monotonic() - started < base.CHECK_EVERY + 0.5
    finally:
        os.close(read_end)
        os.close(write_end)
