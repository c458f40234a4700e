"""A copytruncate copy that keeps the extension (`extension .log`) and so matches a
`*.log` glob is known as a copy of the file it came from, never shipped twice."""

import os
import subprocess

import pytest

from file_helpers import append, file_input, wait_saved


@pytest.mark.skipif(not os.path.exists("/usr/sbin/logrotate"), reason="needs logrotate")
@pytest.mark.parametrize("dateext", [False, True], ids=["extension", "dateext-extension"])
def test_copytruncate_with_extension_under_a_star_log_glob_ships_no_line_twice(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir, dateext):
    """`path = DIR/*.log` (the README's own example) with logrotate `copytruncate` and
    `extension .log` (keep the extension: api.log -> api.1.log, or api-20261127.log with
    dateext): the copy matches the glob. "A rotated copy matching the glob is never
    shipped twice" (CONTRACT)."""
    directory = tmp_path / "api"
    directory.mkdir()
    path = str(directory / "api.log")
    before = [b"before %02d" % i for i in range(20)]
    append(path, b"".join(line + b"\n" for line in before))
    proc = tailrabbit_factory(file_input(config, queue_name, str(directory / "*.log")))
    wait_saved(state_dir, path, os.path.getsize(path))
    conf = tmp_path / "logrotate.conf"
    conf.write_text(f"{path} {{\n    rotate 5\n    copytruncate\n    extension .log\n"
                    + ("    dateext\n" if dateext else "") + "}\n")
    result = subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "logrotate.state"),
                             str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    copy, = [str(directory / name) for name in os.listdir(directory) if name != "api.log"]
    append(path, b"after 1\n")
    # the copy is judged in the poll that sees the truncation, at the latest the one that
    # reads "after 1": what it ships is handed on by then, and the stop drains it
    wait_saved(state_dir, path, len(b"after 1\n"))
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == before + [b"after 1"], f"{len(bodies) - 21} lines twice ({copy})"
