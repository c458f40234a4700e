"""Finding a log file's rotated copies by identity, among the names logrotate gives them:
`path.1`, `path.0`, `path-20261126`, `path.1` kept uncompressed by delaycompress, and
with logrotate's `extension .log` the extension kept last: `api.1.log`, `api-20261126.log`.
Compressed copies are skipped: their bytes are not the log's bytes. A rotated name is
opened by the caller's `opener` (files/matches.py: no planted link followed); without one,
a link at the name itself is not followed. A path that was a link switched to another file
while tailrabbit was stopped: the old file is looked for at the path the link resolved to
(saved in its checkpoint), and among that path's rotated names too (open_away)."""

import glob
import os

from tailrabbit.files.identity import same_content_start

COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z", ".zip")


def is_compressed(name):
    return name.endswith(COMPRESSED)


def _stem_and_extension(path):
    """("dir/api", ".log") for "dir/api.log"; ("dir/api.log", "") when there is none."""
    stem, extension = os.path.splitext(path)
    return (stem, extension) if extension and os.path.basename(stem) else (path, "")


def looks_rotated(name, path):
    """True if `name` is one of the names rotated_names(path) can give."""
    if is_compressed(name) or name == path:
        return False
    stem, extension = _stem_and_extension(path)
    return (name.startswith((path + ".", path + "-"))
            or bool(extension) and name.endswith(extension)
            and name.startswith((stem + ".", stem + "-")))


def rotated_names(path):
    """Candidate rotated copies of `path`, newest first. A candidate is only a name: the
    caller judges it by identity or content (api-v2.log fits `extension`'s pattern)."""
    names = set(glob.glob(glob.escape(path) + ".*")) | set(glob.glob(glob.escape(path) + "-*"))
    stem, extension = _stem_and_extension(path)
    if extension:
        for pattern in (".*", "-*"):
            names |= set(glob.glob(glob.escape(stem) + pattern + glob.escape(extension)))
    names = [n for n in names if not is_compressed(n) and n != path]

    def mtime(name):
        try:
            return os.stat(name).st_mtime
        except OSError:
            return 0
    return sorted(names, key=mtime, reverse=True)


def open_nofollow(name):
    return os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)


def open_rotated(path, identity, min_size, same_inode, tail=b"", exclude=(),
                 opener=open_nofollow):
    """Open the rotated copy of the file `identity` (at least `min_size` bytes).

    `same_inode`: look for the file itself renamed (rename + create); else for a copy with
    the same first bytes (copytruncate). `tail`: the bytes the file held just before
    `min_size`, when known. A copy must hold them too, up to its own end: a file that
    only shares the first bytes (a constant CSV header) is not the copy, and a copy made
    a moment before we read the last lines of the original ends inside `tail`.
    `exclude`: inodes already being read. `opener(name)`: a descriptor or OSError.
    Returns (name, fd) or (None, None).
    """
    for name in rotated_names(path):
        try:
            fd = opener(name)
        except OSError:
            continue
        st = os.fstat(fd)
        inode = (st.st_dev, st.st_ino)
        if ((inode == identity.inode) == same_inode and inode not in exclude
                and _holds(fd, st.st_size, min_size, tail)
                and same_content_start(fd, identity)):
            return name, fd
        os.close(fd)
    return None, None


def _holds(fd, size, end, tail):
    """The file holds `tail`, which ended at offset `end`, at least up to its own end."""
    start = end - len(tail)
    if size >= end:
        return os.pread(fd, len(tail), start) == tail
    if size <= start:
        return False
    return os.pread(fd, size - start, start) == tail[:size - start]


def still_at(record, opener):
    """The file of `record` is still at its path, with its content, not shorter."""
    fd = _open_whole(record, opener, record.path)
    if fd is None:
        return False
    os.close(fd)
    return True


def _open_whole(record, opener, name):
    """A descriptor of `name` if it holds the file of `record`, whole, else None."""
    try:
        fd = opener(name)
    except OSError:
        return None
    st = os.fstat(fd)
    if ((st.st_dev, st.st_ino) == record.identity.inode and st.st_size >= record.offset
            and same_content_start(fd, record.identity)):
        return fd
    os.close(fd)
    return None


def followed_names(record):
    """The names the file of `record` was followed by: its path and, when that led through
    a link, the link-free path it resolved to (checkpoints.py: `resolved`)."""
    resolved = record.resolved
    return [record.path] + ([resolved] if resolved and resolved != record.path else [])


def away_names(record):
    """Where a start looks for the file of `record` once its path names another file:
    open_away's names, for a caller that only asks whether it would be found there."""
    names = followed_names(record)
    return names[1:] + [name for path in names for name in rotated_names(path)]


def _the_file_itself(record, opener, names):
    """(name, fd or None) of each place the file of `record` itself may be, in order,
    opened only when asked for: the link-free path, then rotated names of each name."""
    for name in names[1:]:
        yield name, _open_whole(record, opener, name)
    for path in names:
        yield open_rotated(path, record.identity, record.offset, same_inode=True,
                           opener=opener)


def open_away(record, opener):
    """At a start, the path of `record` names another file (or none): where did its file go?

      - a link switched to another file (a deploy points current.log at releases/8/app.log
        instead of releases/7/app.log): the file is still at the path the link resolved
        to. Read from the checkpoint if it grew past it; if it did not, nothing is
        unread, and nothing is looked for further (a copy beside it is an older one);
      - renamed (rename + create) under a rotated name of either path;
      - copied (copytruncate) under one of those names: the copy holds at least up to
        the checkpoint and begins with the file's first bytes.
    The file itself is taken only with bytes past the checkpoint; found without (read to
    its end), nothing is unread and no copy is looked for: a copytruncate copy, which
    keeps the record of the file it was copied from (inputs/file_rotation.py), must not
    be taken for the copy of itself by a later copy starting with the same bytes (a
    constant header). Returns (name, fd, same_inode): same_inode False for a copy; or
    (None, None, None)."""
    names = followed_names(record)
    for name, fd in _the_file_itself(record, opener, names):
        if fd is not None:
            if os.fstat(fd).st_size > record.offset:
                return name, fd, True
            os.close(fd)
            return None, None, None
    for path in names:
        name, fd = open_rotated(path, record.identity, record.offset, same_inode=False,
                                opener=opener)
        if fd is not None:
            return name, fd, False
    return None, None, None
