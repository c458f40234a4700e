"""The one crash-safe write (tailrabbit/atomic.py) and its two users: checkpoints and the
spool's position.json both fsync the file, rename it, then fsync its directory."""

import errno
import json
import os
import stat

import pytest

from tailrabbit import atomic
from tailrabbit.buffer import LineBuffer
from tailrabbit.files.checkpoints import CheckpointStore
from tailrabbit.files.identity import FileIdentity
from tailrabbit.line import Batch
from tailrabbit.spool import Spool
from tailrabbit.stats import InputStats


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_write_json_replaces_the_file_whole_0600_and_leaves_no_temp(tmp_path, umask):
    path = tmp_path / "state.json"
    path.write_text("old")
    path.chmod(0o644)
    old = os.umask(umask)
    try:
        atomic.write_json(str(path), {"a": [1, 2]}, indent=1)
    finally:
        os.umask(old)
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["state.json"]


def record_calls(monkeypatch):
    """os.fsync / os.rename / os.replace as they happen: ("fsync", what it synced)."""
    calls = []
    real_fsync, real_rename, real_replace = os.fsync, os.rename, os.replace

    def fsync(fd):
        info = os.fstat(fd)
        calls.append(("fsync", "dir" if stat.S_ISDIR(info.st_mode) else "file",
                      info.st_ino))
        return real_fsync(fd)

    def rename(src, dst, real):
        calls.append(("rename", os.path.basename(src), os.path.basename(dst)))
        return real(src, dst)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", lambda s, d: rename(s, d, real_rename))
    monkeypatch.setattr(os, "replace", lambda s, d: rename(s, d, real_replace))
    return calls


def assert_durable_replace(calls, directory, name):
    """The temp file is fsynced before it is renamed to `name`, and `directory` after."""
    renames = [i for i, call in enumerate(calls) if call[0] == "rename" and call[2] == name]
    assert renames, calls
    at = renames[-1]
    temp = calls[at][1]
    assert temp != name
    assert any(call[:2] == ("fsync", "file") for call in calls[:at]), calls
    directory_ino = os.stat(directory).st_ino
    assert ("fsync", "dir", directory_ino) in calls[at + 1:], calls


def test_write_file_fsyncs_file_then_renames_then_fsyncs_the_directory(tmp_path,
                                                                        monkeypatch):
    calls = record_calls(monkeypatch)
    atomic.write_file(str(tmp_path / "f"), b"data")
    assert [c[:2] for c in calls] == [("fsync", "file"), ("rename", "f.tmp"),
                                      ("fsync", "dir")]
    assert_durable_replace(calls, tmp_path, "f")


def test_checkpoints_are_written_through_it(tmp_path, monkeypatch):
    store = CheckpointStore(str(tmp_path), "x")
    store.add(FileIdentity(1, 2, "ab", 2), "/x.log", 10)
    calls = record_calls(monkeypatch)
    store.save()
    assert_durable_replace(calls, tmp_path, "checkpoints-x.json")
    assert ("rename", "checkpoints-x.json.new", "checkpoints-x.json") in calls


def test_the_spool_position_is_written_through_it(tmp_path, monkeypatch):
    buffer = LineBuffer(10)
    spool = Spool(str(tmp_path), "web", 1 << 20, buffer, InputStats())
    spool.append(Batch("web", [b"a"]))
    spool.append(Batch("web", [b"b"]))
    batch = spool._next_batch()
    calls = record_calls(monkeypatch)
    batch.source.confirmed(batch)
    spool.save_position()
    directory = tmp_path / "spool" / "web"
    assert_durable_replace(calls, directory, "position.json")
    assert json.loads((directory / "position.json").read_text())["offset"] == \
        batch.end_offset


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_a_planted_link_at_the_temp_path_is_never_written_through(tmp_path, umask):
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch\n")
    os.symlink(victim, tmp_path / "f.tmp")
    old = os.umask(umask)
    try:
        atomic.write_file(str(tmp_path / "f"), b"data")
    finally:
        os.umask(old)
    assert victim.read_bytes() == b"do not touch\n"
    assert (tmp_path / "f").read_bytes() == b"data"
    assert not (tmp_path / "f").is_symlink()
    assert not os.path.lexists(tmp_path / "f.tmp")


@pytest.mark.parametrize("failing", ["write", "fsync", "rename"])
def test_a_failure_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch, failing):
    path = tmp_path / "f"
    path.write_bytes(b"old")

    def refuse(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, failing, refuse)
    with pytest.raises(OSError):
        atomic.write_file(str(path), b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_a_short_write_is_completed(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    atomic.write_file(str(tmp_path / "f"), b"0123456789")
    monkeypatch.undo()
    assert (tmp_path / "f").read_bytes() == b"0123456789"
