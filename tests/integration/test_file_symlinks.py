"""File inputs never follow a planted link (issue 9, "Private files").

Anyone who can write in a log directory can plant `evil.log -> /var/log/auth.log`; a glob
`*.log` must not ship it (like Filebeat's `symlinks: false`) unless the input says
`follow_symlinks = True`; a path named exactly may be a link (the operator chose it).
The check must not race with the open, and rotated-copy lookups must not follow either.

The first test runs the daemon against the real broker and consumes the queue; the others
drive FileInput in-process (the buffer confirms at once, as in tests/unit/test_logfile_model.py).
Links are planted owned by uid 65534 when the tests run as root (no second user is
created: O_NOFOLLOW and the glob check do not depend on who made the link).
"""

import logging
import os

import pytest

from helpers import text_events
from tailrabbit import config as config_module
from tailrabbit.files.identity import identify
from tailrabbit.files.matches import MatchPolicy
from tailrabbit.files.rotated import open_rotated
from tailrabbit.inputs.logfile import FileInput
from tailrabbit.settings import InputSettings
from tailrabbit.stats import Stats


def lines(prefix, count):
    return b"".join(b"%s %03d\n" % (prefix, i) for i in range(count))


def plant(link, target):
    """A link made by "someone else": owned by nobody when we can chown (tests run as
    root here); O_NOFOLLOW does not depend on the owner, the warning names it anyway."""
    os.symlink(target, link)
    if os.geteuid() == 0:
        os.lchown(link, 65534, 65534)


def append(path, data):
    with open(path, "ab") as handle:
        handle.write(data)


@pytest.fixture
def secret(tmp_path):
    """A file outside the log directory that nobody may ship."""
    directory = tmp_path / "private"
    directory.mkdir()
    path = directory / "auth.log"
    path.write_bytes(lines(b"SECRET", 40))
    return path


# ---- end to end ----------------------------------------------------------------------

def test_a_planted_link_matching_the_glob_is_never_shipped(broker, config, queue_name,
                                                           tailrabbit_factory, tmp_path,
                                                           secret):
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", lines(b"a", 20))
    append(logs / "b.log", lines(b"b", 10))
    plant(logs / "evil.log", secret)                     # present at start
    config["input:api"] = {"type": "file", "path": str(logs / "*.log"), "queue": queue_name,
                           "start_at": "beginning"}
    proc = tailrabbit_factory(config)
    broker.wait_depth(queue_name, 30)
    plant(logs / "late.log", secret)                     # planted while running
    proc.wait_for_event("file_symlink_skipped", containing=str(logs / "late.log"))
    append(logs / "a.log", lines(b"a2", 5))              # polls keep running past the links
    broker.wait_depth(queue_name, 35)
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    shipped_secrets = [b for b in bodies if b.startswith(b"SECRET")]
    assert shipped_secrets == [], f"{len(shipped_secrets)} lines of the secret shipped"
    by_file = {p: [b for b in bodies if b.split(b" ")[0] == p] for p in (b"a", b"b", b"a2")}
    assert by_file[b"a"] == lines(b"a", 20).splitlines()
    assert by_file[b"b"] == lines(b"b", 10).splitlines()
    assert by_file[b"a2"] == lines(b"a2", 5).splitlines()
    assert len(bodies) == 35
    log = proc.log()
    for name in ("evil.log", "late.log"):
        warned = [(event, message) for level, event, message in text_events(log)
                  if str(logs / name) in message and level == "WARNING"]
        assert len(warned) == 1, f"{name}: {warned}"
        assert warned[0][0] == "file_symlink_skipped" and str(secret) in warned[0][1]


def test_follow_symlinks_true_ships_a_linked_match(broker, config, queue_name,
                                                   tailrabbit_factory, tmp_path, secret):
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", lines(b"a", 3))
    os.symlink(secret, logs / "linked.log")
    config["input:api"] = {"type": "file", "path": str(logs / "*.log"), "queue": queue_name,
                           "start_at": "beginning", "follow_symlinks": "True"}
    proc = tailrabbit_factory(config)
    broker.wait_depth(queue_name, 43)
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert sorted(bodies) == sorted(lines(b"a", 3).splitlines()
                                    + lines(b"SECRET", 40).splitlines())
    assert not proc.logged("file_symlink_skipped"), proc.log()


# ---- in process ----------------------------------------------------------------------

class ConfirmingBuffer:
    def __init__(self):
        self.lines = []

    def put(self, batch, block=True, timeout=None):
        self.lines.extend(batch.lines)
        if batch.source is not None:
            batch.source.confirmed(batch)
        return True


def file_input(tmp_path, path, **settings):
    item = InputSettings(name="api", type="file", path=str(path), queue="q",
                         start_at="beginning", rotate_wait=0.0, **settings)
    buffer = ConfirmingBuffer()
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    reader = FileInput(item, buffer, Stats(["api"]), str(state))
    reader.start(0.0)
    return reader, buffer


def test_an_exact_path_may_be_a_link(tmp_path, secret):
    link = tmp_path / "current.log"
    os.symlink(secret, link)
    reader, buffer = file_input(tmp_path, link)
    reader.poll(1.0)
    reader.close()
    assert buffer.lines == lines(b"SECRET", 40).splitlines()


def test_a_regular_file_swapped_for_a_link_before_the_open_is_not_followed(tmp_path,
                                                                             secret):
    """The stat saw a regular file; a link takes its place before the open: the open
    must fail (O_NOFOLLOW), not read the link's target."""
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", lines(b"a", 2))
    append(logs / "x.log", lines(b"x", 2))
    reader, buffer = file_input(tmp_path, logs / "*.log")
    matches = reader._matches()
    assert set(matches) == {str(logs / "a.log"), str(logs / "x.log")}
    os.unlink(logs / "x.log")
    os.symlink(secret, logs / "x.log")                   # the swap, after the stat
    for path in matches:
        tailer = reader._open(path, 1.0)
        if tailer is not None:
            reader._read_current(tailer, 1.0)
    reader.poll(2.0)
    reader.close()
    assert buffer.lines == lines(b"a", 2).splitlines()


def test_a_link_in_a_directory_the_glob_matched_is_not_followed(tmp_path, secret):
    """`logs/*/app.log`: a planted directory link `logs/evil -> private` makes a match
    whose last component is a regular file; the directory link is the planted one."""
    logs = tmp_path / "logs"
    (logs / "web").mkdir(parents=True)
    append(logs / "web" / "app.log", lines(b"web", 3))
    os.rename(secret, secret.parent / "app.log")
    os.symlink(secret.parent, logs / "evil")
    reader, buffer = file_input(tmp_path, logs / "*" / "app.log")
    reader.poll(1.0)
    reader.close()
    assert buffer.lines == lines(b"web", 3).splitlines()


def test_follow_symlinks_is_a_file_input_key(tmp_path):
    path = tmp_path / "c.ini"
    path.write_text("[input:a]\ntype = file\npath = /tmp/x/*.log\nfollow_symlinks = yes\n"
                    "[input:b]\ntype = file\npath = /tmp/y/*.log\n")
    a, b = config_module.load(str(path)).inputs
    assert (a.follow_symlinks, b.follow_symlinks) == (True, False)
    path.write_text("[input:a]\ntype = fifo\npath = /tmp/x.fifo\nfollow_symlinks = True\n")
    with pytest.raises(config_module.ConfigError, match="follow_symlinks: applies only to "
                                                        "type = file"):
        config_module.load(str(path))


def test_a_planted_link_at_a_rotated_name_is_not_taken_for_the_copy(tmp_path, caplog):
    """copytruncate: the unread tail is looked for among `app.log.1`, ... A link planted
    there, to a file that starts with the log's bytes and goes on with others, would be
    read from our offset on: its other lines shipped."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log_path = logs / "app.log"
    append(log_path, lines(b"log", 10))
    secret = tmp_path / "private.log"
    secret.write_bytes(lines(b"log", 10) + lines(b"SECRET", 5))
    reader, buffer = file_input(tmp_path, log_path)
    reader.poll(1.0)
    assert buffer.lines == lines(b"log", 10).splitlines()
    os.symlink(secret, logs / "app.log.1")
    os.truncate(log_path, 0)                             # "copied", then truncated
    append(log_path, lines(b"new", 2))
    with caplog.at_level(logging.WARNING):
        reader.poll(2.0)
    reader.close()
    assert [b for b in buffer.lines if b.startswith(b"SECRET")] == []
    assert buffer.lines == (lines(b"log", 10) + lines(b"new", 2)).splitlines()


def test_open_rotated_follows_a_link_only_when_told(tmp_path):
    log_path = tmp_path / "app.log"
    log_path.write_bytes(lines(b"x", 5))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(lines(b"x", 5))
    os.symlink(elsewhere, tmp_path / "app.log.1")
    fd = os.open(log_path, os.O_RDONLY)
    identity = identify(fd)
    os.close(fd)
    name, found = open_rotated(str(log_path), identity, 1, same_inode=False)
    assert (name, found) == (None, None)
    for follow in (False, True):
        policy = MatchPolicy("api", str(log_path), str(tmp_path / "state"), follow)
        name, found = open_rotated(str(log_path), identity, 1, same_inode=False,
                                   opener=policy.open)
        assert (found is not None) == follow
    assert name == str(tmp_path / "app.log.1")
    os.close(found)


def test_recovery_at_start_does_not_follow_a_link_at_a_rotated_name(tmp_path):
    """Rotated while we were down: a copy is looked for among the rotated names."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log_path = logs / "app.log"
    append(log_path, lines(b"log", 10))
    reader, buffer = file_input(tmp_path, log_path)
    reader.poll(1.0)
    reader.close()
    reader.save_checkpoints()
    secret = tmp_path / "private.log"
    secret.write_bytes(lines(b"log", 10) + lines(b"SECRET", 5))
    os.symlink(secret, logs / "app.log.1")
    os.unlink(log_path)
    append(log_path, lines(b"new", 2))
    again, buffer = file_input(tmp_path, log_path)
    again.poll(2.0)
    again.close()
    assert [b for b in buffer.lines if b.startswith(b"SECRET")] == []
    assert buffer.lines == lines(b"new", 2).splitlines()


def test_a_fifo_swapped_in_after_the_scan_does_not_block_the_open(tmp_path):
    """open() of a FIFO with no writer blocks the whole process (every input, the
    publisher): a planted FIFO must fail the open, not hang it."""
    import signal

    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", lines(b"a", 2))
    append(logs / "x.log", lines(b"x", 2))
    reader, buffer = file_input(tmp_path, logs / "*.log")
    matches = reader._matches()
    os.unlink(logs / "x.log")
    os.mkfifo(logs / "x.log")

    class Hung(Exception):          # not an OSError: _open must not swallow it
        pass

    def hung(signum, frame):
        raise Hung("open() of a FIFO blocked")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(3)
    try:
        opened = {path: reader._open(path, 1.0) for path in matches}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert opened[str(logs / "x.log")] is None
    reader.poll(2.0)
    reader.close()
    assert buffer.lines == lines(b"a", 2).splitlines()
