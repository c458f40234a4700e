"""Finding a log file's rotated copies by identity, among the names logrotate gives them:
`path.1`, `path.0`, `path-20261126`, `path.1` kept uncompressed by delaycompress, ...
Compressed copies are skipped: their bytes are not the log's bytes."""

import glob
import os

from tailrabbit.files.identity import same_content_start

COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z", ".zip")


def rotated_names(path):
    """Candidate rotated copies of `path`, newest first."""
    names = set(glob.glob(glob.escape(path) + ".*")) | set(glob.glob(glob.escape(path) + "-*"))
    names = [n for n in names if not n.endswith(COMPRESSED)]

    def mtime(name):
        try:
            return os.stat(name).st_mtime
        except OSError:
            return 0
    return sorted(names, key=mtime, reverse=True)


def open_rotated(path, identity, min_size, same_inode):
    """Open the rotated copy of the file `identity` (at least `min_size` bytes).

    `same_inode`: look for the file itself renamed (rename + create); else for a copy with
    the same first bytes (copytruncate). Returns (name, fd) or (None, None).
    """
    for name in rotated_names(path):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        st = os.fstat(fd)
        inode_matches = (st.st_dev, st.st_ino) == identity.inode
        if (st.st_size >= min_size and inode_matches == same_inode
                and same_content_start(fd, identity)):
            return name, fd
        os.close(fd)
    return None, None
