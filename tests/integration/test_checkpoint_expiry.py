"""A checkpoint record older than the expiry is kept while its file is being read."""

import json
import os
import time

from file_helpers import append, checkpoints, file_input, wait_saved

def test_a_checkpoint_older_than_the_expiry_survives_a_long_first_poll(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """tailrabbit was down for 4 days (longer than checkpoints.EXPIRE_SECONDS, 3 days):
    its records were last `seen` then. The first poll reads the backlog for more than a
    second, so a save runs before the poll refreshed `seen`: the record of the file being
    read must not expire (the file is right there), or the next start reads it from 0."""
    path = str(tmp_path / "api.log")
    old = [b"old %06d" % i for i in range(10)]
    append(path, b"".join(line + b"\n" for line in old))
    config = file_input(config, queue_name, path)
    config["tailrabbit"]["buffer"] = 1000
    first = tailrabbit_factory(config, name="first")
    wait_saved(state_dir, path, os.path.getsize(path))
    assert first.stop() == 0, first.log()
    state = os.path.join(state_dir, "checkpoints-api.json")
    with open(state) as handle:
        data = json.load(handle)
    for entry in data["files"]:
        entry["seen"] = int(time.time()) - 4 * 24 * 3600     # down for four days
    with open(state, "w") as handle:
        json.dump(data, handle)
    backlog = [b"new %06d" % i for i in range(120000)]        # written while down
    append(path, b"".join(line + b"\n" for line in backlog))
    second = tailrabbit_factory(config, name="second")
    broker.wait_depth(queue_name, len(old) + len(backlog), timeout=120)
    assert second.stop() == 0, second.log()
    saved = checkpoints(state_dir)                    # should name the file at its end
    third = tailrabbit_factory(config, name="third")
    append(path, b"last\n")
    wait_saved(state_dir, path, os.path.getsize(path), timeout=120)
    assert third.stop() == 0, third.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert len(bodies) == len(old) + len(backlog) + 1, \
        (f"{len(bodies) - len(old) - len(backlog) - 1} lines shipped twice; the checkpoints "
         f"after the second run: {saved}")
    assert bodies == old + backlog + [b"last"]
