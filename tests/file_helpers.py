"""Helpers of the file-input tests (tests/integration): a file input's config section,
appending to a log file, the saved checkpoints, waiting for a checkpoint or a count of
lines read, and holding the tailrabbit process still with SIGSTOP while files change."""

import json
import os
import signal

from helpers import wait_for


def file_input(config, queue, path, **extra):
    config["input:api"] = {"type": "file", "path": path, "queue": queue,
                           "start_at": "beginning", "rotate_wait": 1, **extra}
    return config


def append(path, data):
    with open(path, "ab") as handle:
        handle.write(data)


def checkpoints(state_dir, name="api"):
    """The saved checkpoint entries of input `name` ([] before the first save)."""
    try:
        with open(os.path.join(state_dir, f"checkpoints-{name}.json")) as handle:
            return json.load(handle)["files"]
    except (OSError, ValueError):
        return []


def saved_offset(state_dir, path):
    """The saved offset of the file at `path` now (matched by inode), or None."""
    st = os.stat(path)
    for entry in checkpoints(state_dir):
        if (entry["dev"], entry["ino"]) == (st.st_dev, st.st_ino):
            return entry["offset"]
    return None


def wait_saved(state_dir, path, offset, timeout=30.0):
    """Until the checkpoint of the file at `path` is saved at `offset` (every line before
    it confirmed)."""
    wait_for(lambda: saved_offset(state_dir, path) == offset, timeout,
             message=f"checkpoint of {path} at {offset} (have "
                     f"{saved_offset(state_dir, path)})")


def stats_of(proc, name="api"):
    """SIGUSR1, then the figures of input `name`'s stats line."""
    return proc.stats(name)


def wait_read(proc, count):
    proc.wait_for_event("started")                    # SIGUSR1 before that is fatal
    wait_for(lambda: stats_of(proc)["read"] >= count, message=f"{count} lines read")


class Held:
    """SIGSTOP the process for the block; SIGCONT after, whatever happens."""

    def __init__(self, proc):
        self.proc = proc

    def __enter__(self):
        self.proc.signal(signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        self.proc.signal(signal.SIGCONT)
