"""Which FIFOs are read: only a FIFO owned by us (or root) that others cannot write."""

import os

import pytest

from tailrabbit.inputs.fifo import untrusted


def test_a_private_fifo_is_trusted_and_others_are_not(tmp_path):
    fifo = tmp_path / "ok.fifo"
    os.mkfifo(fifo, 0o640)
    os.chmod(fifo, 0o640)
    assert untrusted(os.stat(fifo), str(fifo)) is None
    os.chmod(fifo, 0o622)
    assert "writable by others (mode 0622)" in untrusted(os.stat(fifo), str(fifo))
    plain = tmp_path / "plain"
    plain.write_text("")
    assert "is not a FIFO" in untrusted(os.stat(plain), str(plain))


def test_a_fifo_of_another_user_is_not_trusted(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the FIFO to another user")
    fifo = tmp_path / "theirs.fifo"
    os.mkfifo(fifo, 0o600)
    os.chown(fifo, 65534, 65534)
    assert "owned by uid 65534" in untrusted(os.stat(fifo), str(fifo))
