"""What crosses a restart of the spool: loading what an earlier run left (temp files of an
interrupted write, an interrupted prepend, position.json), and the prepend of a graceful
stop, written so that a SIGKILL at any point leaves either the old spool or the new one.
Functions of the Spool's state, kept apart so spool.py stays the steady-state path."""

import json
import os

from tailrabbit import logevents
from tailrabbit.marks import PartOfRecord, SpoolPosition
from tailrabbit.spool.files import (FILE_MODE, TEMP_SUFFIX, commit_temp, create_temp,
                                    discard, make_private_directory, write_all,
                                    write_private_file)
from tailrabbit.spool.format import encode

FIRST_SEQ = 10 ** 12          # room to prepend segments before the first one
COPY_CHUNK = 1 << 20
OLD_POSITION_TEMP = "position.json.new"    # the temp name of versions before this one


def load(spool):
    """Fill a new Spool's state from its directory, finishing or discarding what a crash
    interrupted."""
    if not os.path.isdir(spool.directory):
        return
    _make_private(spool)
    for name in os.listdir(spool.directory):
        if name.endswith(TEMP_SUFFIX) or name == OLD_POSITION_TEMP:
            # Never renamed into place, so what it was to replace is still complete.
            path = os.path.join(spool.directory, name)
            discard(path)
            logevents.spool_partial_write_removed(input=spool.input_name, path=path)
        elif name.endswith(".seg") and name[:-4].isdigit():
            seq = int(name[:-4])
            spool._segments.append(seq)
            spool._sizes[seq] = os.path.getsize(spool._path(seq))
    spool._segments.sort()
    position = _load_position(spool)
    if position is None:
        position = (spool._segments[0], 0) if spool._segments else None
    for seq in [s for s in spool._segments if position and s < position[0]]:
        spool._remove(seq)        # confirmed before a crash, not yet removed
    spool._read = spool._confirmed = position
    if spool._segments:
        logevents.spool_replay_pending(input=spool.input_name, bytes=spool.pending_bytes())


def _make_private(spool):
    """Earlier versions left 0755 directories and 0644 segments: made private at start."""
    try:
        make_private_directory(spool.directory)
        for name in os.listdir(spool.directory):
            path = os.path.join(spool.directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                os.chmod(path, FILE_MODE)
    except OSError as error:
        logevents.spool_not_private(input=spool.input_name, path=spool.directory,
                                    reason=error.strerror)


def _load_position(spool):
    path = os.path.join(spool.directory, "position.json")
    try:
        with open(path, "rb") as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return None
    except ValueError as error:
        logevents.spool_position_corrupt(input=spool.input_name, path=path,
                                         reason=str(error))
        return None
    intent = data.get("prepend")
    if isinstance(intent, dict) and _is_int(intent.get("segment")) \
            and intent["segment"] in spool._sizes:
        # A prepend renamed its segment into place, then was killed: finish it.
        first, replaces = intent["segment"], intent.get("replaces")
        for seq in [s for s in spool._segments
                    if _is_int(replaces) and first < s <= replaces]:
            spool._remove(seq)
        spool._position_dirty = True
        logevents.spool_prepend_completed(input=spool.input_name)
        return first, 0
    seq, offset = data.get("segment"), data.get("offset")
    if seq is None and offset is None:
        return None
    if not (_is_int(seq) and _is_int(offset) and seq in spool._sizes
            and 0 <= offset <= spool._sizes[seq]):
        logevents.spool_position_out_of_range(input=spool.input_name, path=path,
                                              position=data)
        return None
    return seq, offset


def prepend(spool, batches):
    """A graceful stop: `batches` (every unconfirmed batch of the input still in
    memory, oldest first, replayed ones included) go before what was never replayed.

    The new first segment holds them, then the unreplayed rest of the segment being
    replayed; the segments up to that one are then dropped (their unconfirmed batches
    are in `batches`). Crash-safe in this order: (1) the new segment is written as a
    temp file (O_EXCL|O_NOFOLLOW, 0600); (2) position.json records the intent (the new
    segment's number and the last segment it replaces) beside the current position;
    (3) the temp file is fsynced, renamed into place and the directory fsynced: the
    commit point; (4) the
    replaced segments are removed and position.json points at the new one. Killed
    before (3), the next start removes the temp file and finds the old spool whole (the
    intent names a segment that does not exist); killed after, it finds the intent and
    finishes (4). On OSError before (3) (a full disk), the temp file is removed, the
    spool is left as it was and the error is raised: the caller reports the lines lost.
    """
    batches = [b for b in batches if b.lines]
    if not batches and spool._read == spool._confirmed:
        return
    spool._close_write_segment()
    seq = (spool._segments[0] if spool._segments else FIRST_SEQ + 1) - 1
    replaces = spool._read[0] if spool._read is not None else None
    make_private_directory(spool.directory)
    fd, temp = create_temp(spool._path(seq))
    try:
        size = _write_prepended(spool, fd, batches)
        intent = spool._position_data()
        intent["prepend"] = {"segment": seq, "replaces": replaces}
        write_private_file(os.path.join(spool.directory, "position.json"),
                           json.dumps(intent).encode())
    except OSError:
        os.close(fd)
        discard(temp)
        raise
    commit_temp(fd, temp, spool._path(seq))
    spool._segments.insert(0, seq)
    spool._sizes[seq] = size
    for old_seq in [s for s in spool._segments if replaces is not None and
                    seq < s <= replaces]:
        spool._remove(old_seq)
    spool._read = spool._confirmed = (seq, 0)
    spool._position_dirty = True
    spool._failed_writes.clear()      # their ranges were copied: damage, if met again
    spool._skipped.clear()
    spool.stats.spooled += sum(len(b.lines) for b in batches
                               if not isinstance(b.source, (SpoolPosition, PartOfRecord)))
    try:
        spool.save_position()
    except OSError as error:         # the intent is on disk: the next start finishes
        logevents.spool_position_save_failed(input=spool.input_name,
                                             reason=error.strerror)
    spool._note_progress()


def _write_prepended(spool, fd, batches):
    """The new segment's bytes; returns how many."""
    size = 0
    for batch in batches:
        data = encode(batch)
        write_all(fd, data)
        size += len(data)
    if spool._read is not None:
        read_seq, offset = spool._read
        with open(spool._path(read_seq), "rb") as old:
            old.seek(offset)
            left = spool._sizes.get(read_seq, 0) - offset
            while left > 0:
                chunk = old.read(min(COPY_CHUNK, left))
                if not chunk:
                    break
                write_all(fd, chunk)
                left -= len(chunk)
                size += len(chunk)
    return size


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)
