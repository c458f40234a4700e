"""Saved read positions of one file input, advanced only by confirmed lines.

On disk (`state_dir/checkpoints-<input>.json`), format version 1:

    {"version": 1, "input": "api", "files": [
      {"dev": 2049, "ino": 1234, "fingerprint": "9f...", "fingerprint_bytes": 256,
       "path": "/var/log/api/api.log", "offset": 81920, "seen": 1764201600}]}

`offset` is the byte just after the last line the broker confirmed. `path` is the name the
file was followed at, as the pattern gave it; when that name led through a symbolic link
(an exact `path` such as `current.log -> releases/7/app.log`, or a link followed by
`follow_symlinks`), `"resolved": "/srv/app/releases/7/app.log"` also names the file itself,
link-free: a link switched to another file while tailrabbit is stopped leaves the old one
only there, and the next start finds it there by identity (files/rotated.py). `resolved`
is optional, so the version stays 1: a file without it (written before it existed, or of a
path that is no link) loads, and a version that does not know it ignores it.

Writes are atomic (tailrabbit/atomic.py, shared with the spool): a temp file `.new`,
fsync, rename, fsync of the directory; a crash leaves either the old or the new file
whole. The files are 0600 whatever the umask, and a link planted at their paths is never
written or read through (they hold log paths and positions). A corrupt file is survived
with a WARNING. Records of files not seen for EXPIRE_SECONDS are dropped when saving (a
record loaded at start is kept: its file may simply have been idle). The store never reads
logs; the tailers never write JSON.
"""

import errno
import json
import math
import os
import stat
import time

from tailrabbit import atomic, logevents
from tailrabbit.files.identity import FINGERPRINT_BYTES, FileIdentity, same_content_start

FORMAT_VERSION = 1
TEMP_SUFFIX = ".new"       # the name every version used: load() reads a leftover first
EXPIRE_SECONDS = 3 * 24 * 3600


class Record:
    """One file's saved position. `generation` changes when the file is read again from 0
    (truncation), so confirms of lines read before cannot move the offset back up."""

    __slots__ = ("identity", "path", "resolved", "offset", "seen", "generation", "store",
                 "read_end")

    def __init__(self, store, identity, path, offset, seen=None, resolved=None):
        self.store = store
        self.identity = identity
        self.path = path
        self.resolved = resolved     # link-free path, when `path` led through a link
        self.offset = offset
        self.seen = time.time() if seen is None else seen
        self.generation = 0
        self.read_end = offset       # in memory: end of the lines read (confirmed or not)

    def confirm(self, generation, end_offset):
        if generation == self.generation and end_offset > self.offset:
            self.offset = end_offset
            self.store.dirty = True

    def restart(self, offset):
        self.generation += 1
        self.offset = offset
        self.read_end = offset
        self.store.dirty = True

    def resume_offset(self):
        """Where a new reader of this file starts: after the lines read already in this
        process, confirmed or not (a drained file matched again by a glob must not send
        its unconfirmed lines a second time)."""
        return max(self.offset, self.read_end)

    def follow(self, path, resolved):
        """The file is followed at `path` now, which resolves to `resolved` (None: not
        through a link)."""
        if (path, resolved) != (self.path, self.resolved):
            self.path, self.resolved = path, resolved
            self.store.dirty = True

    def to_json(self):
        identity = self.identity
        entry = {"dev": identity.dev, "ino": identity.ino, "fingerprint": identity.fingerprint,
                 "fingerprint_bytes": identity.length, "path": self.path,
                 "offset": self.offset, "seen": int(self.seen)}
        if self.resolved is not None:
            entry["resolved"] = self.resolved   # only then: files of plain paths unchanged
        return entry


class CheckpointStore:
    def __init__(self, state_dir, input_name):
        self.path = os.path.join(state_dir, f"checkpoints-{input_name}.json")
        self.input_name = input_name
        self.records = {}          # (dev, ino) -> Record
        self.dirty = False
        self.loaded_existing = False

    # ---- load ------------------------------------------------------------------------

    def load(self):
        """Read the saved records; True if a state file existed (not the first start)."""
        for candidate in (self.path + ".new", self.path):
            _make_private(candidate)
        for candidate in (self.path + ".new", self.path):
            data = self._read(candidate)
            if data is not None:
                break
        else:
            return self.loaded_existing
        now = time.time()
        for item in data["files"]:
            try:
                record = self._record_of(item, now)
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
                logevents.checkpoint_entry_malformed(path=self.path,
                                                     entry=repr(item)[:200])
                continue
            self.records[record.identity.inode] = record     # expiry happens at save time
        self.loaded_existing = True
        return True

    def _record_of(self, item, now):
        """One entry, strictly typed: a float, string or negative offset is not an offset."""
        identity = FileIdentity(_natural(item["dev"]), _natural(item["ino"]),
                                _text(item["fingerprint"]),
                                _natural(item["fingerprint_bytes"], FINGERPRINT_BYTES))
        seen = item.get("seen", now)
        if isinstance(seen, bool) or not isinstance(seen, (int, float)) \
                or not math.isfinite(seen):
            raise ValueError("seen")
        resolved = item.get("resolved")           # absent in files of older versions
        return Record(self, identity, _text(item["path"]), _natural(item["offset"]),
                      float(seen), None if resolved is None else _text(resolved))

    def mark_started(self):
        """The first start is over: write the state file even with no record, so that
        `start_at = end` never applies again (a first run whose glob matched nothing
        would otherwise skip, at the next start, every line written meanwhile)."""
        if not self.loaded_existing:
            self.loaded_existing = True
            self.dirty = True

    def _read(self, path):
        try:
            raw = _read_nofollow(path)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno == errno.ELOOP:
                # A link where we keep our own files was planted: never read through it
                # (a forged file would set the paths and offsets we resume from).
                logevents.checkpoints_symlink_refused(path=path)
                if path.endswith(".new"):
                    return None          # the main file may still be ours
            else:
                logevents.checkpoints_unreadable(path=path, reason=error.strerror)
            self.loaded_existing = True
            return None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
                raise ValueError(f"unknown format version {data.get('version')!r}"
                                 if isinstance(data, dict) else "not an object")
            if not isinstance(data.get("files", []), list):
                raise ValueError('"files" is not a list')
            data.setdefault("files", [])
            return data
        except (ValueError, RecursionError) as error:
            if not path.endswith(".new"):
                logevents.checkpoints_corrupt(path=path, reason=str(error),
                                              input=self.input_name)
                self.loaded_existing = True
            return None

    # ---- records ---------------------------------------------------------------------

    def find(self, fd, identity):
        """The record of the open file `fd` (identity `identity`), or None.

        The inode must match and the file must still begin with the bytes the record
        fingerprinted; else the inode was reused by another file. A record made while the
        file was shorter than the fingerprint size takes the longer fingerprint now.
        """
        record = self.records.get(identity.inode)
        if record is None or (not record.identity.length and not record.resume_offset()):
            # A record of an empty file matches any file that reuses its inode: without
            # it the file is read from 0 all the same, and may be judged a copy.
            return None
        if not same_content_start(fd, record.identity):
            return None
        # in use from now: a record last seen longer ago than EXPIRE_SECONDS (a long
        # downtime) must not expire at a save during the first, long poll of its file
        record.seen = time.time()
        self.dirty = True
        if identity.length > record.identity.length:
            record.identity = identity
            self.dirty = True
        return record

    def add(self, identity, path, offset):
        record = Record(self, identity, path, offset)
        self.records[identity.inode] = record
        self.dirty = True
        return record

    def forget(self, record):
        if self.records.get(record.identity.inode) is record:
            del self.records[record.identity.inode]
            self.dirty = True

    # ---- save ------------------------------------------------------------------------

    def save(self):
        """Write atomically if anything changed since the last save."""
        if not self.dirty:
            return
        now = time.time()
        for key, record in list(self.records.items()):
            if now - record.seen > EXPIRE_SECONDS:
                del self.records[key]
        data = {"version": FORMAT_VERSION, "input": self.input_name,
                "files": [r.to_json() for r in self.records.values()]}
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        atomic.write_json(self.path, data, temp_suffix=TEMP_SUFFIX, indent=1,
                          sort_keys=True)
        self.dirty = False


def _read_nofollow(path):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _make_private(path):
    """A file of ours an older version left readable by others is made 0600 at load: an
    idle input may not save (and so rewrite it 0600) for days. Never through a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return                      # missing, or a link: load() says what it finds
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.fchmod(fd, 0o600)
    except OSError as error:
        logevents.checkpoints_not_private(path=path, reason=error.strerror)
    finally:
        os.close(fd)


def _natural(value, limit=None):
    """A JSON integer >= 0 (and <= limit): not a bool, a float, a string."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 \
            or (limit is not None and value > limit):
        raise ValueError(f"not a count: {value!r}")
    return value


def _text(value):
    if not isinstance(value, str):
        raise ValueError(f"not a string: {value!r}")
    return value
