"""Log files under the real logrotate, restarts and SIGKILL: nothing lost, nothing twice.

A writer appends numbered lines at a steady rate while logrotate rotates the file. With
`create` every line written must arrive exactly once, in order. copytruncate itself loses
the lines written between its copy and its truncation (logrotate's documented race), so
there every line on disk afterwards (copies and live file) must arrive, and nothing twice
or out of order; lines of the race window arrive if tailrabbit read them in time.
"""

import glob
import gzip
import json
import os
import signal
import subprocess
import time
import warnings
from collections import Counter

import pytest

from helpers import LineWriter, check_at_least_once, wait_for
from integration.test_delivery import connections_of

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/sbin/logrotate"),
                                reason="logrotate is not installed (apt-get install logrotate)")


CHECKPOINT_INTERVAL = 1.0      # tailrabbit/daemon.py: checkpoints saved this often
LINE_BYTES = len(b"line 0000000\n")      # LineWriter's lines


def file_input(config, queue, path, **extra):
    config["input:api"] = {"type": "file", "path": path, "queue": queue,
                           "start_at": "beginning", "rotate_wait": 1, **extra}
    return config


def logrotate(tmp_path, log_path, directives, times, interval, writer):
    conf = tmp_path / "logrotate.conf"
    conf.write_text(f"{log_path} {{\n    rotate 20\n    missingok\n    notifempty\n"
                    + "".join(f"    {d}\n" for d in directives) + "}\n")
    state = tmp_path / "logrotate.state"
    for _ in range(times):
        wait_for(lambda: writer.written > 0, message="the writer to start")
        time.sleep(interval)                       # spread the rotations over the writing
        result = subprocess.run(["logrotate", "-f", "-s", str(state), str(conf)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def lines_on_disk(log_path):
    """Every line in the live file and its rotated copies (gzip'd or not), by number."""
    lines = set()
    for name in glob.glob(log_path + "*"):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(name, "rb") as handle:
            lines.update(line.rstrip(b"\n") for line in handle if line.endswith(b"\n"))
    return lines


@pytest.mark.parametrize("directives", [
    ["create"],
    ["create", "compress", "delaycompress"],
    ["create", "dateext", "dateformat -%Y%m%d-%s"],
], ids=["create", "delaycompress", "dateext"])
def test_rename_create_under_load(broker, config, queue_name, tailrabbit_factory, tmp_path,
                                  directives):
    log_path = str(tmp_path / "api.log")
    open(log_path, "wb").close()
    proc = tailrabbit_factory(file_input(config, queue_name, log_path))
    proc.wait_for_event("connected")
    writer = LineWriter(log_path, 30000, 6000, reopen=True).start()
    logrotate(tmp_path, log_path, directives, times=3, interval=1.1, writer=writer)
    writer.join()
    broker.wait_depth(queue_name, writer.count, timeout=60)
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == writer.expected()


@pytest.mark.parametrize("directives", [
    ["copytruncate"],
    ["copytruncate", "compress", "delaycompress"],
    ["copytruncate", "dateext", "dateformat -%Y%m%d-%s"],
], ids=["copytruncate", "copytruncate-delaycompress", "copytruncate-dateext"])
def test_copytruncate_under_load(broker, config, queue_name, tailrabbit_factory, tmp_path,
                                 directives):
    log_path = str(tmp_path / "api.log")
    open(log_path, "wb").close()
    proc = tailrabbit_factory(file_input(config, queue_name, log_path))
    proc.wait_for_event("connected")
    writer = LineWriter(log_path, 30000, 6000).start()         # holds its descriptor
    logrotate(tmp_path, log_path, directives, times=3, interval=1.1, writer=writer)
    writer.join()
    on_disk = lines_on_disk(log_path)
    expected = [line for line in writer.expected() if line in on_disk]
    broker.wait_depth(queue_name, len(expected), timeout=60)
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == sorted(set(bodies)), "out of order or twice"
    assert set(bodies) <= set(writer.expected())
    assert not set(expected) - set(bodies), "lines on disk were not shipped"
    print(f"copytruncate's own race: {writer.count - len(expected)} of {writer.count} lines "
          f"not on disk, {len(set(bodies) - on_disk)} of those shipped before the truncate")


def test_restart_resumes_at_the_checkpoint_exactly(broker, config, queue_name,
                                                   tailrabbit_factory, tmp_path):
    log_path = str(tmp_path / "api.log")
    config = file_input(config, queue_name, log_path)
    writer = LineWriter(log_path, 20000, 5000).start()
    first = tailrabbit_factory(config, name="first")
    wait_for(lambda: writer.written > 8000, message="traffic")
    assert first.stop() == 0, first.log()
    second = tailrabbit_factory(config, name="second")
    writer.join()
    broker.wait_depth(queue_name, writer.count)
    assert second.stop() == 0, second.log()
    assert [m.body for m in broker.consume_all(queue_name)] == writer.expected()


def test_copytruncate_while_stopped_is_recovered_from_the_copy(broker, config, queue_name,
                                                               tailrabbit_factory, tmp_path):
    """Filebeat lost 50-115 of 150 lines here (elastic/beats#45300)."""
    log_path = str(tmp_path / "api.log")
    config = file_input(config, queue_name, log_path)
    with open(log_path, "ab") as handle:
        handle.write(b"".join(b"before %03d\n" % i for i in range(50)))
    first = tailrabbit_factory(config, name="first")
    broker.wait_depth(queue_name, 50)
    assert first.stop() == 0
    with open(log_path, "ab") as handle:            # while tailrabbit is down
        handle.write(b"".join(b"unread %03d\n" % i for i in range(50)))
    subprocess.run(["cp", log_path, log_path + ".1"], check=True)
    os.truncate(log_path, 0)
    with open(log_path, "ab") as handle:
        handle.write(b"".join(b"after %03d\n" % i for i in range(50)))
    second = tailrabbit_factory(config, name="second")
    broker.wait_depth(queue_name, 150)
    assert second.stop() == 0, second.log()
    assert [m.body for m in broker.consume_all(queue_name)] == (
        [b"before %03d" % i for i in range(50)] + [b"unread %03d" % i for i in range(50)]
        + [b"after %03d" % i for i in range(50)])


def stats_of(proc, name):
    return proc.stats(name)


@pytest.mark.xfail(strict=False, reason="intermittent, under investigation: in 2 of ~9 CI "
                   "runs the restarted tailrabbit logged 'connected' and then published "
                   "nothing for 60 s (no event at all: a hang at start?); the failure "
                   "prints its log")
def test_sigkill_mid_file_loses_nothing(broker, config, queue_name, tailrabbit_factory,
                                        tmp_path, state_dir):
    """After a SIGKILL the restart repeats exactly the lines the broker held beyond the
    saved checkpoint, and that checkpoint covers every line confirmed a save interval
    (1 s) before the kill: the duplicates are bounded by what was unconfirmed then plus
    the last second or so of lines, not by a constant."""
    log_path = str(tmp_path / "api.log")
    config = file_input(config, queue_name, log_path)
    writer = LineWriter(log_path, 40000, 8000).start()
    first = tailrabbit_factory(config, name="first")
    wait_for(lambda: writer.written > 10000, message="traffic")
    before = stats_of(first, "api")
    time.sleep(CHECKPOINT_INTERVAL + 1.0)   # the window the contract allows: 1 s + slack
    first.process.send_signal(signal.SIGKILL)
    first.wait(10)
    written_at_kill = writer.written
    wait_for(lambda: not connections_of(first.pid), interval=0.2,
             message="the broker to drop the killed connection")
    held = broker.depth(queue_name)                 # what the broker took from the first
    with open(os.path.join(state_dir, "checkpoints-api.json")) as handle:
        offset, = [item["offset"] for item in json.load(handle)["files"]]
    assert offset % LINE_BYTES == 0, f"checkpoint {offset} is inside a line"
    saved = offset // LINE_BYTES
    second = tailrabbit_factory(config, name="second")
    writer.join()
    try:
        broker.wait_depth(queue_name, writer.count + held - saved, timeout=60)
    except AssertionError as error:        # once in CI under load: say what the restart did
        diagnosis = f"{error}\n{second.diagnose()}"
        # an xfail hides its message: a warning reaches the run's summary, also from xdist
        warnings.warn(f"test_sigkill_mid_file_loses_nothing stalled: {diagnosis}")
        raise AssertionError(diagnosis) from None
    assert second.stop() == 0, second.log()
    duplicates = check_at_least_once([m.body for m in broker.consume_all(queue_name)],
                                     writer.expected())
    print(f"SIGKILL after {written_at_kill} lines written: {before['published']} published "
          f"and {before['confirmed']} confirmed {CHECKPOINT_INTERVAL + 1:.0f} s before, "
          f"{held} in the queue, checkpoint at line {saved}: {duplicates} duplicates")
    assert saved >= before["confirmed"], "the checkpoint lags more than a save interval"
    assert duplicates == held - saved   # exactly the lines held past the checkpoint


def test_glob_picks_up_new_files_and_skips_rotated_copies(broker, config, queue_name,
                                                         tailrabbit_factory, tmp_path):
    directory = tmp_path / "api"
    directory.mkdir()
    (directory / "a.log").write_bytes(b"".join(b"a %03d %s\n" % (i, b"x" * 40)
                                               for i in range(20)))
    proc = tailrabbit_factory(file_input(config, queue_name, str(directory / "*.log*")))
    broker.wait_depth(queue_name, 20)
    (directory / "b.log").write_bytes(b"b 000\nb 001\n")    # appears later: from its start
    broker.wait_depth(queue_name, 22)
    subprocess.run(["cp", str(directory / "a.log"), str(directory / "a.log.1")], check=True)
    os.truncate(directory / "a.log", 0)                   # copytruncate inside the glob
    with open(directory / "a.log", "ab") as handle:
        handle.write(b"a new\n")
    broker.wait_depth(queue_name, 23)
    proc.signal(signal.SIGUSR1)
    proc.wait_for_event("stats", containing="input=api ")  # a full poll cycle has passed
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert sorted(bodies) == sorted([b"a %03d %s" % (i, b"x" * 40) for i in range(20)]
                                    + [b"b 000", b"b 001", b"a new"])


def test_a_copy_written_slowly_into_the_glob_is_not_shipped(broker, config, queue_name,
                                                           tailrabbit_factory, tmp_path):
    """cp creates the copy empty, then fills it: a poll in between must not take the short
    copy for a new file."""
    directory = tmp_path / "api"
    directory.mkdir()
    original = directory / "a.log"
    content = b"".join(b"a %03d %s\n" % (i, b"x" * 40) for i in range(20))
    original.write_bytes(content)
    proc = tailrabbit_factory(file_input(config, queue_name, str(directory / "*.log*")))
    broker.wait_depth(queue_name, 20)
    with open(directory / "a.log.1", "wb") as copy:
        for piece in (b"", content[:100], content[100:]):   # pauses a poll can fall into
            copy.write(piece)
            copy.flush()
            time.sleep(0.4)
    os.truncate(original, 0)
    with open(original, "ab") as handle:
        handle.write(b"a new\n")
    broker.wait_depth(queue_name, 21)
    with open(directory / "a.log.1", "ab") as handle:        # lines added to a copy later
        handle.write(b"late line in the copy\n")
    broker.wait_depth(queue_name, 22)
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert sorted(bodies) == sorted(content.split(b"\n")[:-1] + [b"a new",
                                                                  b"late line in the copy"])


@pytest.mark.parametrize("directives", [
    ["copytruncate"],
    ["copytruncate", "compress", "delaycompress"],
], ids=["copytruncate", "copytruncate-delaycompress"])
def test_copytruncate_with_a_glob_that_matches_the_copies(broker, config, queue_name,
                                                          tailrabbit_factory, tmp_path,
                                                          directives):
    """`path = DIR/app.log*` matches app.log.1, app.log.2, ...: each copy is new to the glob
    while logrotate is still writing it. Its lines were shipped from app.log: none may arrive
    twice, and no message may be a piece of a line (a copy followed from a mid-copy size)."""
    log_path = str(tmp_path / "app.log")
    open(log_path, "wb").close()
    proc = tailrabbit_factory(file_input(config, queue_name, log_path + "*"))
    proc.wait_for_event("connected")
    writer = LineWriter(log_path, 16000, 2000, prefix=b"GET /api " + b"x" * 190).start()
    logrotate(tmp_path, log_path, directives, times=3, interval=1.8, writer=writer)
    writer.join()
    on_disk = lines_on_disk(log_path)
    expected = [line for line in writer.expected() if line in on_disk]
    broker.wait_depth(queue_name, len(expected), timeout=60)
    proc.signal(signal.SIGUSR1)
    proc.wait_for_event("stats", containing="input=api ")  # a full poll cycle has passed
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    fragments = set(bodies) - set(writer.expected())
    twice = sorted(body for body, n in Counter(bodies).items() if n > 1)
    assert not fragments and not twice, (
        f"{len(fragments)} messages not a whole line (e.g. {sorted(fragments)[0][-40:]!r}), "
        f"{len(twice)} lines twice" if fragments else
        f"{len(twice)} lines twice, {twice[0][-7:]} to {twice[-1][-7:]}")
    assert bodies == sorted(bodies), "out of order"
    assert not set(expected) - set(bodies), "lines on disk were not shipped"
