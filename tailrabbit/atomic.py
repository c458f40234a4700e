"""Crash-safe whole-file writes under state_dir: the checkpoint files
(files/checkpoints.py), the spool's position.json and a prepended spool segment (spool/).

The one way to replace a file so that a crash or power cut at any point leaves either the
old file or the new one, whole: write a temp file beside it, fsync it, rename it over the
file, fsync the directory (the rename is only durable once the directory is). Without the
last fsync, a power cut after the rename can bring back the old file after the daemon
already acted on the new one (removed the spool segments it no longer names).

The files hold log content and positions: 0600 whatever the umask (open() narrows the mode
by the umask, fchmod sets it exactly), and nothing planted at the temp path is written
through: a leftover temp (an interrupted write) is unlinked first, which removes a link and
never its target, then O_CREAT|O_EXCL|O_NOFOLLOW refuses whatever appears there in between.
Rejected: open(path, "w"), which follows a planted link and truncates its target; an lstat
check before the open, which races with whoever plants the link.

Kept in one place because two copies had drifted (the checkpoint store left its temp file
behind on an error; the spool removed it).
"""

import json
import os

FILE_MODE = 0o600
TEMP_SUFFIX = ".tmp"
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_json(path, value, temp_suffix=TEMP_SUFFIX, **dumps_options):
    """Replace `path` with `value` as JSON (UTF-8), crash-safe; see write_file."""
    write_file(path, json.dumps(value, **dumps_options).encode("utf-8"), temp_suffix)


def write_file(path, data, temp_suffix=TEMP_SUFFIX):
    """Replace `path` with `data`, crash-safe, via the temp file `path + temp_suffix`. On
    OSError the temp file is removed and the error raised: `path` is as it was."""
    fd, temp = create_temp(path, temp_suffix)
    try:
        write_all(fd, data)
    except OSError:
        os.close(fd)
        discard(temp)
        raise
    commit_temp(fd, temp, path)


def create_temp(path, temp_suffix=TEMP_SUFFIX):
    """A new, empty, 0600 temp file beside `path` (a leftover of a crash is replaced):
    (fd, temp path). For a caller that writes it in steps, then calls commit_temp."""
    temp = path + temp_suffix
    discard(temp)
    fd = os.open(temp, CREATE_FLAGS, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        discard(temp)
        raise
    return fd, temp


def write_all(fd, data):
    """os.write until every byte is written (a regular file may take fewer bytes)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def commit_temp(fd, temp, path):
    """fsync and close the temp file, rename it to `path`, fsync the directory. On an
    error before the rename the temp file is removed and the error raised: `path` is
    untouched. An error of the directory fsync is raised too (the new file is in place,
    but not known to be durable)."""
    try:
        os.fsync(fd)
    except OSError:
        os.close(fd)
        discard(temp)
        raise
    os.close(fd)
    try:
        os.rename(temp, path)
    except OSError:
        discard(temp)
        raise
    fsync_directory(os.path.dirname(path) or ".")


def fsync_directory(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard(path):
    """Remove `path` if it is there; never raises (cleaning up after a failure must not
    hide the failure)."""
    try:
        os.unlink(path)
    except OSError:
        pass
