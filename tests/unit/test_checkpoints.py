import json
import logging
import os
import shutil
import time

from tailrabbit.files import checkpoints
from tailrabbit.files.checkpoints import CheckpointStore
from tailrabbit.files.identity import FileIdentity, identify

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "checkpoints-v1.json")


def test_golden_file_loads_and_saves_in_the_same_format(tmp_path):
    shutil.copy(GOLDEN, tmp_path / "checkpoints-api.json")
    store = CheckpointStore(str(tmp_path), "api")
    assert store.load() is True
    [record] = store.records.values()
    assert record.identity == FileIdentity(2049, 1234, "00112233445566778899aabb", 256)
    assert (record.path, record.offset) == ("/var/log/api/api.log", 81920)
    record.seen = time.time()
    store.dirty = True
    store.save()
    saved = json.loads((tmp_path / "checkpoints-api.json").read_text())
    golden = json.loads(open(GOLDEN).read())
    saved["files"][0]["seen"] = golden["files"][0]["seen"]
    assert saved == golden


def test_save_is_atomic_and_skipped_when_unchanged(tmp_path):
    store = CheckpointStore(str(tmp_path), "api")
    assert store.load() is False                    # first start: no state file
    store.add(FileIdentity(1, 2, "ab", 2), "/x.log", 10)
    store.save()
    path = tmp_path / "checkpoints-api.json"
    assert not (tmp_path / "checkpoints-api.json.new").exists()
    mtime = path.stat().st_mtime_ns
    store.save()                                    # nothing changed: not written
    assert path.stat().st_mtime_ns == mtime
    again = CheckpointStore(str(tmp_path), "api")
    assert again.load() and again.records[(1, 2)].offset == 10


def test_interrupted_write_keeps_the_last_complete_file(tmp_path):
    store = CheckpointStore(str(tmp_path), "api")
    store.add(FileIdentity(1, 2, "ab", 2), "/x.log", 10)
    store.save()
    (tmp_path / "checkpoints-api.json.new").write_text('{"version": 1, "files": [{"dev"')
    again = CheckpointStore(str(tmp_path), "api")
    assert again.load() and again.records[(1, 2)].offset == 10


def test_a_complete_temp_file_is_newer_than_the_main_one(tmp_path):
    store = CheckpointStore(str(tmp_path), "api")
    store.add(FileIdentity(1, 2, "ab", 2), "/x.log", 10)
    store.save()
    data = json.loads((tmp_path / "checkpoints-api.json").read_text())
    data["files"][0]["offset"] = 20                 # written and synced, not yet renamed
    (tmp_path / "checkpoints-api.json.new").write_text(json.dumps(data))
    again = CheckpointStore(str(tmp_path), "api")
    assert again.load() and again.records[(1, 2)].offset == 20


def test_corrupt_state_is_survived_with_a_warning(tmp_path, caplog):
    (tmp_path / "checkpoints-api.json").write_text("\x00\x00garbage")
    store = CheckpointStore(str(tmp_path), "api")
    with caplog.at_level(logging.WARNING):
        assert store.load() is True      # not a first start: start_at=end must not apply
    assert store.records == {}
    assert "is corrupt" in caplog.text and "read again from their start" in caplog.text


def test_records_of_files_gone_for_long_expire_at_save(tmp_path):
    store = CheckpointStore(str(tmp_path), "api")
    old = store.add(FileIdentity(1, 2, "ab", 2), "/old.log", 10)
    store.add(FileIdentity(1, 3, "cd", 2), "/new.log", 10)
    old.seen = time.time() - checkpoints.EXPIRE_SECONDS - 1
    store.save()
    assert list(store.records) == [(1, 3)]


def test_confirms_of_an_older_generation_do_not_move_the_offset(tmp_path):
    store = CheckpointStore(str(tmp_path), "api")
    record = store.add(FileIdentity(1, 2, "ab", 2), "/x.log", 0)
    record.confirm(0, 100)
    record.restart(0)                               # truncated: read again from 0
    record.confirm(0, 150)                          # a late confirm from before
    assert record.offset == 0
    record.confirm(1, 30)
    assert record.offset == 30


def test_find_rejects_a_reused_inode_with_other_content(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"first file content\n")
    store = CheckpointStore(str(tmp_path), "api")
    fd = os.open(path, os.O_RDONLY)
    try:
        identity = identify(fd)
        store.add(identity, str(path), 19)
        assert store.find(fd, identity) is not None
        with open(path, "r+b") as handle:          # same inode, other bytes
            handle.write(b"SECOND")
        assert store.find(fd, identify(fd)) is None
    finally:
        os.close(fd)


def test_a_short_fingerprint_grows_with_the_file(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"abc\n")
    store = CheckpointStore(str(tmp_path), "api")
    fd = os.open(path, os.O_RDONLY)
    try:
        store.add(identify(fd), str(path), 4)
        with open(path, "ab") as handle:
            handle.write(b"x" * 500)
        longer = identify(fd)
        record = store.find(fd, longer)
        assert record is not None and record.identity.length == 256
    finally:
        os.close(fd)


GOOD_ENTRY = {"dev": 1, "ino": 2, "fingerprint": "ab", "fingerprint_bytes": 2,
              "path": "/x.log", "offset": 10, "seen": 1764201600}


def _load_text(tmp_path, text):
    (tmp_path / "checkpoints-api.json").write_text(text)
    store = CheckpointStore(str(tmp_path), "api")
    return store, store.load()


def test_valid_json_with_wrong_types_is_a_corrupt_file_not_a_crash(tmp_path, caplog):
    """Each of these crashed the input at every start (TypeError, OverflowError)."""
    for files in ('5', '"x"', '{"a": 1}', 'null'):
        with caplog.at_level(logging.WARNING):
            store, existed = _load_text(tmp_path, '{"version": 1, "files": %s}' % files)
        assert existed is True and store.records == {}, files
        assert "is corrupt" in caplog.text
        caplog.clear()


def test_entries_with_wrong_types_are_skipped_with_a_warning(tmp_path, caplog):
    bad_values = {"offset": [1e400, "10", -1, 10.5, True, None, [10]],
                  "dev": ["1", -1, 1.0], "ino": [None, {"a": 1}],
                  "fingerprint": [5, None], "fingerprint_bytes": [257, -1, "2"],
                  "path": [5, None, ["/x"]], "seen": ["now", 1e400, float("nan")]}
    entries = [5, "entry", None, [1, 2], {}]
    for key, values in bad_values.items():
        for value in values:
            entries.append(dict(GOOD_ENTRY, **{key: value}))
    good = dict(GOOD_ENTRY, ino=3)
    text = json.dumps({"version": 1, "files": entries + [good]}, allow_nan=True)
    text = text.replace("Infinity", "1e400")
    with caplog.at_level(logging.WARNING):
        store, existed = _load_text(tmp_path, text)
    assert existed is True
    assert list(store.records) == [(1, 3)] and store.records[(1, 3)].offset == 10
    assert caplog.text.count("skipping a malformed checkpoint entry") == len(entries)


def test_a_temp_file_with_wrong_types_falls_back_to_the_main_file(tmp_path):
    store = CheckpointStore(str(tmp_path), "api")
    store.add(FileIdentity(1, 2, "ab", 2), "/x.log", 10)
    store.save()
    (tmp_path / "checkpoints-api.json.new").write_text('{"version": 1, "files": 5}')
    again = CheckpointStore(str(tmp_path), "api")
    assert again.load() and again.records[(1, 2)].offset == 10


def test_the_first_start_is_recorded_even_with_no_file(tmp_path):
    """A first run whose glob matched nothing: the next start is not a first start."""
    store = CheckpointStore(str(tmp_path), "api")
    assert store.load() is False
    store.mark_started()
    store.save()
    again = CheckpointStore(str(tmp_path), "api")
    assert again.load() is True and again.records == {}


# ---- private files (issue 9): 0600 whatever the umask, no planted link followed --------

import pytest  # noqa: E402
import stat  # noqa: E402


def _saved_store(tmp_path, name="x"):
    store = CheckpointStore(str(tmp_path), name)
    store.add(FileIdentity(1, 2, "ab", 2), "/x.log", 10)
    return store


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_checkpoint_files_are_0600_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        store = _saved_store(tmp_path)
        store.save()
        mode = stat.S_IMODE((tmp_path / "checkpoints-x.json").stat().st_mode)
        assert mode == 0o600, f"umask {umask:03o}: checkpoint mode {mode:03o}"
        # a file left by an older version with a wider mode is replaced by a 0600 one
        (tmp_path / "checkpoints-x.json").chmod(0o644)
        store.add(FileIdentity(1, 3, "cd", 2), "/y.log", 5)
        store.save()
        assert stat.S_IMODE((tmp_path / "checkpoints-x.json").stat().st_mode) == 0o600
    finally:
        os.umask(old)


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_a_missing_state_dir_is_created_0700(tmp_path, umask):
    old = os.umask(umask)
    try:
        store = _saved_store(tmp_path / "state")
        store.save()
        assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    finally:
        os.umask(old)


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_a_planted_link_at_the_temp_path_is_never_written_through(tmp_path, umask):
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch\n")
    victim.chmod(0o644)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.symlink(victim, state / "checkpoints-x.json.new")
    old = os.umask(umask)
    try:
        store = _saved_store(state)
        store.save()
    finally:
        os.umask(old)
    assert victim.read_bytes() == b"do not touch\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not os.path.lexists(state / "checkpoints-x.json.new")
    saved = state / "checkpoints-x.json"
    assert not saved.is_symlink() and stat.S_IMODE(saved.stat().st_mode) == 0o600
    again = CheckpointStore(str(state), "x")
    assert again.load() and again.records[(1, 2)].offset == 10


def test_a_planted_link_at_the_temp_path_is_not_read_at_load(tmp_path):
    """A `.new` is read first at load (an interrupted save); a link there is not ours."""
    store = _saved_store(tmp_path)
    store.save()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({"version": 1, "files": [
        {"dev": 1, "ino": 2, "fingerprint": "ab", "fingerprint_bytes": 2,
         "path": "/x.log", "offset": 999}]}))
    os.symlink(forged, tmp_path / "checkpoints-x.json.new")
    again = CheckpointStore(str(tmp_path), "x")
    assert again.load() and again.records[(1, 2)].offset == 10


def test_a_checkpoint_left_readable_by_an_older_version_is_made_0600_at_load(tmp_path):
    """An idle input may not save for days: its old 0644 file must not wait for a save."""
    store = _saved_store(tmp_path)
    store.save()
    shutil.copy(tmp_path / "checkpoints-x.json", tmp_path / "checkpoints-x.json.new")
    for name in ("checkpoints-x.json", "checkpoints-x.json.new"):
        (tmp_path / name).chmod(0o644)
    again = CheckpointStore(str(tmp_path), "x")
    assert again.load()
    for name in ("checkpoints-x.json", "checkpoints-x.json.new"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
