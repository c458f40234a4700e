"""File identity: device + inode, plus a fingerprint of the first bytes.

The path is not the identity (logrotate renames files) and neither is the inode alone: a
deleted file's inode is reused by the next file created (vectordotdev/vector#23076), and a
copytruncate copy has a new inode but the old content. The fingerprint is a hash of the
first FINGERPRINT_BYTES bytes, or of all of them while the file is shorter; a file is the
same file when device and inode match and its first `length` bytes hash the same.
"""

import hashlib
import os
from dataclasses import dataclass

FINGERPRINT_BYTES = 256


def _digest(data):
    return hashlib.blake2b(data, digest_size=12).hexdigest()


@dataclass(frozen=True)
class FileIdentity:
    dev: int
    ino: int
    fingerprint: str
    length: int          # how many leading bytes the fingerprint covers

    @property
    def inode(self):
        return (self.dev, self.ino)

    def __str__(self):
        return f"{self.dev}:{self.ino}:{self.fingerprint}/{self.length}"


def identify(fd):
    st = os.fstat(fd)
    head = os.pread(fd, FINGERPRINT_BYTES, 0)
    return FileIdentity(st.st_dev, st.st_ino, _digest(head), len(head))


def same_content_start(fd, identity):
    """True if the file at `fd` begins with the bytes `identity` fingerprinted."""
    head = os.pread(fd, identity.length, 0)
    return len(head) == identity.length and _digest(head) == identity.fingerprint

