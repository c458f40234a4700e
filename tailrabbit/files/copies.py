"""Is a new glob match a copy of a file already being tailed?

With `path = /var/log/api/app.log*` and logrotate `copytruncate`, every rotation makes a
new match, `app.log.1`, whose bytes were shipped already through `app.log`. Shipping it
again repeats every line; following it from "its end" while logrotate is still writing it
ships half a line and then everything after it again (issue 8, item 9).

A match is a copy of a tailed file T only when
  - its name is one of T's rotated names (`T.1`, `T-20261127`, ...): a new CSV or W3C
    log that merely starts with the same long header as another file is a new file
    (rejected design: "same first 256 bytes" -- it skipped such files whole, item 4);
  - and its bytes so far are T's bytes, compared in full, not just the head.
Such a match is not read; its growth is compared with T at each poll. When T is
truncated, the truncation handler (inputs/file_rotation.py) reads T's unread tail from the
copy under T's checkpoint, which moves to the copy (a stop in the middle leaves the rest
to the next start); read to its end, the copy's checkpoint is at its end: from then on it
is an ordinary file, and lines added to it later are shipped. If the copy instead grows
with bytes T does not have, it is read from the start of the line where it departs from
T; the lines before that are T's lines, shipped from T: one WARNING with their count.
"""

import os

import gevent

from tailrabbit import logevents
from tailrabbit.files.identity import FINGERPRINT_BYTES, same_content_start
from tailrabbit.files.rotated import looks_rotated, open_nofollow, open_rotated


COMPARE_CHUNK = 1 << 20
COPY_SETTLE = 2.0        # seconds a copy may be longer than its idle original before it counts


def first_difference(fd, other, start, end):
    """Compare two files on [start, end): (offset, differs). `offset` is `end` if they
    agree on all of it, else the first byte where they differ (`differs` True) or where
    `other` ends (`differs` False; `fd` is assumed to hold `end` bytes)."""
    position = start
    while position < end:
        want = min(COMPARE_CHUNK, end - position)
        mine, theirs = os.pread(fd, want, position), os.pread(other, want, position)
        if mine != theirs:
            common = min(len(mine), len(theirs))
            index = next((i for i in range(common) if mine[i] != theirs[i]), common)
            return position + index, index < common
        position += want
        if want == COMPARE_CHUNK:
            gevent.sleep(0)          # a large copy: let the publisher run between chunks
    return end, False


def line_start_before(fd, offset):
    """The start of the line holding byte `offset` (0 or just after a newline)."""
    position = offset
    while position > 0:
        begin = max(0, position - 65536)
        newline = os.pread(fd, position - begin, begin).rfind(b"\n")
        if newline >= 0:
            return begin + newline + 1
        position = begin
    return 0


def count_lines(fd, end):
    count, position = 0, 0
    while position < end:
        data = os.pread(fd, min(COMPARE_CHUNK, end - position), position)
        if not data:
            break
        count += data.count(b"\n")
        position += len(data)
    return count


def intact(tailer):
    """The tailed file still holds what was read of it (not truncated, not rewritten)."""
    return (tailer.fd is not None and tailer.size() >= tailer.read_pos
            and same_content_start(tailer.fd, tailer.record.identity))


class CopyWatch:
    """A match judged a copy of `original`, known equal to it on its first `matched` bytes.
    `identity`: the match's when judged (an inode reused by another file is not it).
    `compared` is False when the original was truncated before the comparison ended: the
    match is not read until the truncation handler has looked for the copy."""

    __slots__ = ("identity", "original", "matched", "since", "compared")

    def __init__(self, identity, original, matched, now, compared=True):
        self.identity, self.original, self.matched = identity, original, matched
        self.since, self.compared = now, compared

    @property
    def inode(self):
        return self.identity.inode

    def still(self, fd, identity):
        """The match at `fd` is still the file this watch judged."""
        return identity.inode == self.inode and same_content_start(fd, self.identity)


class CopyJudge:
    """Per file input: the matches currently judged copies, and lines never read from them."""

    def __init__(self, input_name, stats=None, opener=open_nofollow):
        self.input_name = input_name
        self.opener = opener        # opens a match or rotated name (files/matches.py)
        self.stats = stats          # InputStats: `skipped` counts what is never shipped
        self.watches = {}           # path -> CopyWatch
        self.skipped_lines = 0      # lines of departed copies left to their original

    def count_skipped(self, lines):
        self.skipped_lines += lines
        if self.stats is not None:
            self.stats.skipped += lines

    def forget(self, path):
        self.watches.pop(path, None)

    def keep_only(self, paths):
        """Drop the watches of paths gone or naming another file (`paths`: path -> inode)."""
        for path, watch in list(self.watches.items()):
            if paths.get(path) != watch.inode:
                del self.watches[path]

    def detach(self, original):
        """`original` was truncated: its copies hold only bytes shipped from it; from now
        on only bytes added to them are new."""
        for path, watch in list(self.watches.items()):
            if watch.original is original and not watch.compared:
                del self.watches[path]          # judged again at the next look
            elif watch.original is original:
                watch.original = None
                try:
                    watch.matched = max(watch.matched, os.stat(path).st_size)
                except OSError:
                    pass

    def offset(self, path, fd, identity, size, tracked, now):
        """Where to start reading the new match `path`: None while it is a copy (do not
        read it), else an offset (0 for a new file)."""
        watch = self.watches.get(path)
        # Judged again while nothing of it is known equal: an empty file at a rotated name
        # is logrotate's copy about to be written, or a new file (an IIS log that begins
        # with its header): its first bytes decide, not its emptiness (judged a copy of
        # its 0 bytes, a new file then lost its header lines as "the original's").
        if watch is None or watch.matched == 0 or not watch.still(fd, identity) \
                or size < watch.matched:
            watch = self._first_look(path, fd, identity, size, tracked, now)
            if watch is None:
                self.forget(path)
                return 0
            self.watches[path] = watch
            if watch.matched:               # an empty one is undecided: nothing to say
                logevents.file_is_copy(input=self.input_name, path=path,
                                       original=watch.original.path, bytes=watch.matched)
        departed = self._departure(watch, fd, size, now)
        if departed is None:
            return None
        self.forget(path)
        start = line_start_before(fd, departed)
        skipped = count_lines(fd, start)
        self.count_skipped(skipped)
        if skipped:
            logevents.file_copy_grew(input=self.input_name, path=path,
                                     original=watch.original.path, offset=start,
                                     count=skipped, total=self.skipped_lines)
        return start

    def _first_look(self, path, fd, identity, size, tracked, now):
        for original in tracked:
            if original.inode == identity.inode or not looks_rotated(path, original.path):
                continue
            equal, differs = (first_difference(fd, original.fd, 0, size) if intact(original)
                              else (0, False))
            if not intact(original):
                # Truncated before or while we compared (logrotate runs beside us): the
                # next poll's truncation handler decides what this match is.
                return CopyWatch(identity, original, equal, now, compared=False)
            if not differs and (equal == size or equal > 0):
                return CopyWatch(identity, original, equal, now)
        return None

    def _departure(self, watch, fd, size, now):
        """None while the copy still equals its original, else where it departs."""
        original = watch.original
        if original is None or original.fd is None:   # nothing to compare with any more
            return watch.matched if size > watch.matched else None
        if not intact(original):
            return None                          # truncated: the truncation handler decides
        if size > watch.matched:
            equal, differs = first_difference(fd, original.fd, watch.matched, size)
            if equal > watch.matched:
                watch.matched, watch.since = equal, now
            if differs:
                return equal if intact(original) else None
        if size > watch.matched and now - watch.since >= COPY_SETTLE:
            return watch.matched                 # longer than its idle original, for a while
        return None


def find_copy(tailer, judge, reading, known, matches):
    """The copytruncate copy of the truncated file of `tailer`: (name, fd, verified).

    In order: a rotated name holding the file's first bytes and the bytes we read last
    (verified); a match already judged its copy (verified: compared in full while the
    original was intact); a match of the glob seen for the first time now, with a rotated
    name and the same first FINGERPRINT_BYTES bytes, shorter than what we read (not
    verified: it ends before the last bytes we kept; a glob would ship it again).
    `reading`: inodes being read; `known`: inodes with a checkpoint; `matches`: the glob's.
    """
    identity = tailer.record.identity
    name, fd = open_rotated(tailer.path, identity, tailer.read_pos, same_inode=False,
                            tail=tailer.tail, exclude=reading, opener=judge.opener)
    if fd is not None:
        return name, fd, True
    for path, watch in list(judge.watches.items()):
        if watch.original is tailer and watch.compared:
            fd = _open_inode(path, watch.inode, judge.opener)
            if fd is not None:
                return path, fd, True
    if identity.length == FINGERPRINT_BYTES:
        name, fd = open_rotated(tailer.path, identity, 1, same_inode=False,
                                exclude=reading | known, opener=judge.opener)
        if fd is not None and name in matches and os.fstat(fd).st_size <= tailer.read_pos:
            return name, fd, False
        if fd is not None:
            os.close(fd)
    return None, None, False


def _open_inode(path, inode, opener):
    try:
        fd = opener(path)
    except OSError:
        return None
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) == inode:
        return fd
    os.close(fd)
    return None
