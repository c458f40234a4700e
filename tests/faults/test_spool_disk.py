"""The spool's disk fills up while the broker is down: tailrabbit stays up, the FIFO writer
never blocks, what did not fit is counted as dropped (whole lines, exactly), and every line
that was spooled arrives once the broker is back, in order, none torn."""

import os
import subprocess
import threading
import time

import pytest

from helpers import wait_for
from integration.test_fifo import open_writer

LINES = 20000


@pytest.fixture
def small_disk(tmp_path):
    """state_dir on a real 1 MiB tmpfs (tests run as root); skipped where mounting is not
    permitted. (The same fixture as tests/unit/test_spool.py's tmpfs.)"""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs",
                             str(mount_point)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield str(mount_point)
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def stats_of(proc):
    return proc.stats("web")


def test_a_full_spool_disk_drops_and_counts_and_replays_every_spooled_line(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory, tmp_path,
        small_disk):
    proxy.set_mode("refuse")
    broker.declare(queue_name, durable=True, auto_delete=False)
    proxied_config["tailrabbit"].update(state_dir=small_disk, buffer=200)
    path = str(tmp_path / "web.fifo")
    proxied_config["input:web"] = {"type": "fifo", "path": path, "queue": queue_name}
    proc = tailrabbit_factory(proxied_config)
    expected = [b"req %06d %s" % (i, b"z" * 90) for i in range(LINES)]   # 2 MB: twice the disk
    fd = open_writer(path)
    done = threading.Event()

    def write():                     # about 4,000 lines/s, in writes of 100 lines
        for start in range(0, LINES, 100):
            os.write(fd, b"".join(line + b"\n" for line in expected[start:start + 100]))
            time.sleep(0.025)        # pacing the writer, not waiting for a result
        done.set()
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(30)
    assert done.is_set(), "the FIFO writer blocked while the spool's disk was full"
    os.close(fd)
    wait_for(lambda: stats_of(proc)["read"] == LINES, message="all lines read")
    figures = stats_of(proc)
    assert proc.process.poll() is None, proc.log()       # still up
    assert 0 < figures["dropped"] < LINES
    assert figures["spooled"] + figures["dropped"] + figures["buffered"] == LINES
    failed = proc.logged("spool_write_failed", small_disk)
    assert failed and "No space left on device" in failed[0], proc.log()
    proxy.set_mode("pass")
    arrived = LINES - figures["dropped"]
    broker.wait_depth(queue_name, arrived, timeout=60)
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert len(bodies) == arrived                       # dropped is exact: no more, no less
    index = {line: i for i, line in enumerate(expected)}
    torn = [b for b in bodies if b not in index]
    assert not torn, f"{len(torn)} torn lines, e.g. {torn[:2]}"
    positions = [index[b] for b in bodies]
    assert positions == sorted(set(positions)), "lines repeated or out of order"
    print(f"1 MiB spool disk, {LINES} lines of 101 bytes with the broker down: "
          f"{figures['spooled']} spooled, {figures['dropped']} dropped, {arrived} arrived")
