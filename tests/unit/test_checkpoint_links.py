"""A file input whose path is a symbolic link (an exact `path`, or a glob match with
follow_symlinks) switched to another file while tailrabbit is stopped: a deploy points
`current.log` at `releases/2/app.log` instead of `releases/1/app.log`. The checkpoint
saves the link-free path too (`resolved`), so the next start finds the old file there by
identity and reads its unread rest before the new file, in the order the writer wrote
them (files/checkpoints.py, files/rotated.py open_away, inputs/file_rotation.py).

FileInput runs in-process with explicit time; the broker is a buffer that confirms every
batch at once (as in test_logfile_model.py), or never (a stop with the broker down).
"""

import json
import os
import shutil

import pytest

from tailrabbit.files.checkpoints import CheckpointStore
from tailrabbit.files.identity import FileIdentity
from tailrabbit.files.matches import MatchPolicy
from tailrabbit.inputs.logfile import FileInput
from tailrabbit.settings import InputSettings
from tailrabbit.stats import Stats

from unit.test_logfile_model import ConfirmingBuffer


def append(path, data):
    with open(path, "ab") as handle:
        handle.write(data)


def switch(link, target):
    """Point `link` at `target` atomically, as deploy tools do (ln -sfn + rename)."""
    os.symlink(target, link + ".new")
    os.rename(link + ".new", link)


class HoldingBuffer:
    """A broker that never confirms: the lines stay unconfirmed (a stop with it down)."""

    def __init__(self):
        self.batches = []

    def put(self, batch, block=True, timeout=None):
        self.batches.append(batch)
        return True


@pytest.fixture
def deploy(tmp_path):
    """`current.log -> releases/1/app.log`, the target given relative, as `ln -s` does."""
    for number in (1, 2):
        (tmp_path / "releases" / str(number)).mkdir(parents=True)
    link = str(tmp_path / "current.log")
    os.symlink("releases/1/app.log", link)
    return (link, str(tmp_path / "releases/1/app.log"), str(tmp_path / "releases/2/app.log"))


@pytest.fixture
def run(tmp_path):
    """run(buffer, clock, **settings): a started FileInput; stop(item) saves and closes."""
    made = []

    def start(buffer, clock=0.0, path=None, **keys):
        keys = {"rotate_wait": 5.0, **keys}
        settings = InputSettings(name="api", type="file",
                                 path=path or str(tmp_path / "current.log"), queue="q",
                                 start_at="beginning", **keys)
        item = FileInput(settings, buffer, Stats(["api"]), str(tmp_path / "state"))
        item.start(clock)
        made.append(item)
        return item

    yield start
    for item in made:
        item.close()


def stop(item, clock):
    item.poll(clock)
    item.close()
    item.save_checkpoints()


def saved(tmp_path):
    with open(tmp_path / "state" / "checkpoints-api.json") as handle:
        return json.load(handle)["files"]


# ---- the switch while stopped ---------------------------------------------------------

def test_the_old_targets_rest_goes_before_the_new_targets_lines(tmp_path, deploy, run):
    link, one, two = deploy
    append(one, b"one 1\n")
    buffer = ConfirmingBuffer()
    stop(run(buffer), 1.0)
    [entry] = saved(tmp_path)
    assert (entry["path"], entry["resolved"]) == (link, one)
    append(one, b"one 2\none 3\n")                 # the old app's last lines, unread
    append(two, b"two 1\n")
    switch(link, "releases/2/app.log")
    item = run(buffer, 10.0)
    item.poll(11.0)
    append(two, b"two 2\n")
    item.poll(12.0)
    assert buffer.lines == [b"one 1", b"one 2", b"one 3", b"two 1", b"two 2"]
    stop(item, 20.0)                               # the old one retired after rotate_wait
    by_target = {e["resolved"]: e["offset"] for e in saved(tmp_path)}
    assert by_target == {one: 18, two: 12}


def test_the_old_targets_unterminated_line_goes_first_once_quiet(tmp_path, deploy, run):
    """The old app may still finish its last line: it waits rotate_wait, and the new
    target's lines wait behind it (as for a file renamed away)."""
    link, one, two = deploy
    append(one, b"one 1\n")
    buffer = ConfirmingBuffer()
    stop(run(buffer), 1.0)
    append(one, b"one 2 unterminated")
    append(two, b"two 1\n")
    switch(link, "releases/2/app.log")
    item = run(buffer, 10.0)
    item.poll(11.0)                                # the old target grew: read now
    item.poll(15.9)
    assert buffer.lines == [b"one 1"]
    item.poll(16.0)                                # then quiet for rotate_wait
    assert buffer.lines == [b"one 1", b"one 2 unterminated", b"two 1"]


def test_the_old_target_rotated_in_its_own_directory_is_found_there(
        tmp_path, deploy, run):
    """logrotate ran on releases/1/app.log too (rename + create) while we were down."""
    link, one, two = deploy
    append(one, b"one 1\n")
    buffer = ConfirmingBuffer()
    stop(run(buffer), 1.0)
    append(one, b"one 2\n")
    os.rename(one, one + ".1")
    append(one, b"")
    append(two, b"two 1\n")
    switch(link, "releases/2/app.log")
    item = run(buffer, 10.0)
    item.poll(11.0)
    assert buffer.lines == [b"one 1", b"one 2", b"two 1"]


def test_the_old_target_copytruncated_while_stopped_gives_its_tail_from_the_copy(
        tmp_path, deploy, run):
    link, one, two = deploy
    append(one, b"one 1\n")
    buffer = ConfirmingBuffer()
    stop(run(buffer), 1.0)
    append(one, b"one 2\n")
    shutil.copyfile(one, one + ".1")
    os.truncate(one, 0)
    append(two, b"two 1\n")
    switch(link, "releases/2/app.log")
    item = run(buffer, 10.0)
    item.poll(11.0)
    assert buffer.lines == [b"one 1", b"one 2", b"two 1"]


def test_an_old_target_read_to_its_end_is_left_alone(tmp_path, deploy, run):
    """Switched while running, read to its end: nothing to recover at the next start, and
    an older copy beside it that begins with the same bytes is not taken for its copy."""
    link, one, two = deploy
    append(one, b"same head\n")
    buffer = ConfirmingBuffer()
    item = run(buffer)
    item.poll(1.0)
    append(two, b"two 1\n")
    switch(link, "releases/2/app.log")
    item.poll(2.0)
    stop(item, 10.0)
    append(one + ".1", b"same head\nolder copy line\n")
    item = run(buffer, 20.0)
    assert item._draining == []
    item.poll(21.0)
    assert buffer.lines == [b"same head", b"two 1"]


def test_a_glob_match_followed_as_a_link_is_found_the_same_way(tmp_path, deploy, run):
    """follow_symlinks: `*.log` matches the link in the log directory, not the release."""
    link, one, two = deploy
    append(one, b"one 1\n")
    buffer = ConfirmingBuffer()
    pattern = str(tmp_path / "*.log")
    stop(run(buffer, path=pattern, follow_symlinks=True), 1.0)
    append(one, b"one 2\n")
    append(two, b"two 1\n")
    switch(link, "releases/2/app.log")
    item = run(buffer, 10.0, path=pattern, follow_symlinks=True)
    item.poll(11.0)
    assert buffer.lines == [b"one 1", b"one 2", b"two 1"]


def test_a_stop_with_the_broker_down_leaves_the_old_targets_lines_to_the_file(
        tmp_path, deploy, run):
    """Switched while running, then a stop with the old target's lines unconfirmed: the
    next start reads them from the old target, so they are not spooled (that would ship
    them twice)."""
    link, one, two = deploy
    append(one, b"one 1\n")
    buffer = HoldingBuffer()
    item = run(buffer)
    item.poll(1.0)
    append(one, b"one 2\n")
    append(two, b"two 1\n")
    switch(link, "releases/2/app.log")
    item.poll(2.0)
    stop(item, 3.0)
    lines = [line for batch in buffer.batches for line in batch.lines]
    assert lines == [b"one 1", b"one 2", b"two 1"]
    assert item.not_readable_again(buffer.batches) == []
    again = ConfirmingBuffer()
    item = run(again, 10.0)
    item.poll(11.0)
    assert again.lines == [b"one 1", b"one 2", b"two 1"]


def test_a_plain_path_saves_no_resolved_name(tmp_path, run):
    path = str(tmp_path / "api.log")
    append(path, b"line\n")
    stop(run(ConfirmingBuffer(), path=path), 1.0)
    [entry] = saved(tmp_path)
    assert "resolved" not in entry and entry["path"] == path


# ---- the checkpoint file --------------------------------------------------------------

ENTRY = {"dev": 1, "ino": 2, "fingerprint": "ab", "fingerprint_bytes": 2,
         "path": "/var/log/current.log", "offset": 10, "seen": 1764201600}


def _load(tmp_path, entry):
    (tmp_path / "checkpoints-api.json").write_text(
        json.dumps({"version": 1, "input": "api", "files": [entry]}))
    store = CheckpointStore(str(tmp_path), "api")
    assert store.load() is True
    return store


def test_a_file_without_resolved_loads(tmp_path):
    [record] = _load(tmp_path, ENTRY).records.values()
    assert (record.path, record.resolved, record.offset) == ("/var/log/current.log", None, 10)


def test_resolved_is_saved_and_loaded_again(tmp_path):
    store = CheckpointStore(str(tmp_path), "api")
    record = store.add(FileIdentity(1, 2, "ab", 2), "/x/current.log", 10)
    record.follow("/x/current.log", "/x/releases/7/app.log")
    store.save()
    again = CheckpointStore(str(tmp_path), "api")
    again.load()
    assert again.records[(1, 2)].resolved == "/x/releases/7/app.log"


def test_a_resolved_that_is_not_a_string_is_a_malformed_entry(tmp_path):
    assert _load(tmp_path, {**ENTRY, "resolved": 5}).records == {}
    assert _load(tmp_path, {**ENTRY, "resolved": None}).records[(1, 2)].resolved is None


# ---- the resolved name ----------------------------------------------------------------

def test_resolved_names_the_target_through_a_directory_link(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "app.log").write_bytes(b"x\n")
    os.symlink("data", tmp_path / "logs")
    policy = MatchPolicy("api", str(tmp_path / "logs" / "app.log"), str(tmp_path / "state"))
    fd = policy.open(str(tmp_path / "logs" / "app.log"))
    try:
        assert policy.resolved(str(tmp_path / "logs" / "app.log"), fd) == \
            str(tmp_path / "data" / "app.log")
        assert policy.resolved(str(tmp_path / "data" / "app.log"), fd) is None
    finally:
        os.close(fd)


def test_resolved_is_none_when_the_link_switched_since_the_open(tmp_path, deploy):
    link, one, two = deploy
    append(one, b"one\n")
    append(two, b"two\n")
    policy = MatchPolicy("api", link, str(tmp_path / "state"))
    fd = policy.open(link)
    try:
        assert policy.resolved(link, fd) == one
        switch(link, "releases/2/app.log")
        assert policy.resolved(link, fd) is None
    finally:
        os.close(fd)
