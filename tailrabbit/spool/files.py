"""Private files for the spool: spooled lines are log content, so every directory is 0700
and every file 0600 whatever the umask (os.makedirs and open() apply the umask, and an
existing file keeps its mode: both are set explicitly), and no file is ever opened through a
symlink planted in its place.

Whole files (position.json, a prepended segment) are written the crash-safe way: a temp
file created with O_EXCL|O_NOFOLLOW, fsync, rename into place, fsync of the directory.
"""

import errno
import os
import stat

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
TEMP_SUFFIX = ".tmp"
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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


def create_temp(path):
    """A new temp file beside `path` (a leftover of a crash is replaced): (fd, temp path)."""
    temp = path + TEMP_SUFFIX
    try:
        os.unlink(temp)
    except FileNotFoundError:
        pass
    fd = os.open(temp, CREATE_FLAGS, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd, temp


def write_all(fd, data):
    """os.write until every byte is written (a regular file may take fewer bytes)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def commit_temp(fd, temp, path):
    """fsync and close the temp file, rename it to `path`, fsync the directory. On an
    error the temp file is removed and the error raised: `path` is untouched."""
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
    fsync_directory(os.path.dirname(path))


def write_private_file(path, data):
    fd, temp = create_temp(path)
    try:
        write_all(fd, data)
    except OSError:
        os.close(fd)
        discard(temp)
        raise
    commit_temp(fd, temp, path)


def fsync_directory(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard(path):
    try:
        os.unlink(path)
    except OSError:
        pass
