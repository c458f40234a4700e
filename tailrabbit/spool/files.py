"""Private files for the spool: spooled lines are log content, so every directory is 0700
and every file 0600 whatever the umask (os.makedirs and open() apply the umask, and an
existing file keeps its mode: both are set explicitly), and no file is ever opened through a
symlink planted in its place.

Whole files (position.json, a prepended segment) are written the crash-safe way, the same
as the checkpoints: tailrabbit/atomic.py (a temp file created with O_EXCL|O_NOFOLLOW,
fsync, rename into place, fsync of the directory), re-exported here under the names the
spool modules use.
"""

import errno
import os
import stat

from tailrabbit.atomic import (FILE_MODE, TEMP_SUFFIX, commit_temp, create_temp,  # noqa: F401
                               discard, write_all)
from tailrabbit.atomic import write_file as write_private_file  # noqa: F401

DIRECTORY_MODE = 0o700


def make_private_directory(path):
    """Create `path` and its parent (the spool root) as 0700, or make them 0700 (a link to
    a directory elsewhere is allowed: its target is made 0700)."""
    for directory in (os.path.dirname(path), path):
        try:
            os.mkdir(directory, DIRECTORY_MODE)
        except FileExistsError:
            if not stat.S_ISDIR(os.stat(directory).st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                         directory) from None
        os.chmod(directory, DIRECTORY_MODE)


def open_private_append(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                 FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd
