"""Events of the on-disk spool (tailrabbit/spool/): writes refused, damaged ranges skipped
at replay, and what a start finds of an earlier run.

`path` is the spool's directory (`state_dir/spool/<input>`) or one file in it, as each
event says; `bytes` a length, `offset` a byte of a segment. Each has an `input` field;
the events whose text names the input themselves ("spool of input web: ...") carry no
prefix, the others the usual `input NAME: `.
"""

import os

from tailrabbit.logevents.event import ERROR, INFO, WARNING, Event

LOGGER = "tailrabbit.spool"

# ---- writing (store.py) -------------------------------------------------------------

# Per batch while the cause lasts: one ERROR, then at most one per WARN_EVERY. Keyed by
# the directory too (one per input in a daemon), so a new Spool of the same name in
# another state_dir (a test's) starts its own count, as the old per-Spool limit did.
spool_full = Event(
    "spool_full", ERROR, "spool full (spool_max_bytes = {spool_max_bytes}): lines "
    "dropped, see the dropped counter", "input path spool_max_bytes", LOGGER,
    limit_by=("input", "path"))
spool_write_failed = Event(
    "spool_write_failed", ERROR, "cannot write to the spool in {path}: {reason}; lines "
    "dropped, see the dropped counter", "input path reason", LOGGER,
    limit_by=("input", "path"))
# A short write that could not be cut back: the torn batch stays the tail of a closed
# segment, and replay skips it (spool_batch_skipped). `path`: the segment.
spool_truncate_failed = Event(
    "spool_truncate_failed", ERROR, "cannot truncate the torn batch at byte {offset} of "
    "{path} ({reason}); replay will skip it", "input offset path reason", LOGGER)
# `path`: the segment; it is removed at the next start (it lies below the position).
spool_segment_remove_failed = Event(
    "spool_segment_remove_failed", ERROR, "cannot remove the replayed spool segment "
    "{path}: {reason}", "input path reason", LOGGER)
# At exit: the write segment's fsync or position.json failed (spool_close_failed, in
# process.py, is the input set's report of a close that raised).
spool_flush_failed = Event(
    "spool_flush_failed", ERROR, "cannot close the spool in {path}: {reason}",
    "input path reason", LOGGER)

# ---- replaying (replay.py) ----------------------------------------------------------

# The lines of these ranges were counted as dropped when their write failed.
spool_batch_skipped = Event(
    "spool_batch_skipped", ERROR, "spool segment {path}: skipped {bytes} bytes at byte "
    "{offset}, a batch whose write failed and could not be undone (its lines were "
    "counted as dropped then)", "input path bytes offset", LOGGER)


def _damaged_text(f):
    return (f"spool segment {f['path']} is damaged at byte {f['offset']} ({f['reason']}): "
            f"skipped {f['bytes']} bytes, {f['count']} lines (counted as dropped)"
            + ("; replay resumes after them" if f["resumes"] else ""))


# `count`: the lines skipped (counted as dropped now); `resumes`: false when the damage
# runs to the segment's end.
spool_segment_damaged = Event(
    "spool_segment_damaged", ERROR, _damaged_text,
    "input path offset reason bytes count resumes", LOGGER)
spool_segment_unreadable = Event(
    "spool_segment_unreadable", ERROR, "cannot read spool segment {path} ({reason}): "
    "skipped its last {bytes} bytes", "input path reason bytes", LOGGER)

# ---- starting and stopping (restart.py) ---------------------------------------------


def _partial_write_text(f):
    return (f"removed {os.path.basename(f['path'])}, an unfinished spool write of an "
            f"earlier run")


# `path`: the temp file removed (the text names it without its directory).
spool_partial_write_removed = Event(
    "spool_partial_write_removed", INFO, _partial_write_text, "input path", LOGGER)
spool_replay_pending = Event(
    "spool_replay_pending", INFO, "{bytes} bytes spooled by an earlier run will be "
    "published first", "input bytes", LOGGER)
spool_not_private = Event(
    "spool_not_private", WARNING, "cannot make the spool in {path} private (0700/0600): "
    "{reason}", "input path reason", LOGGER)
# `path`: the position.json; its segments are replayed from their start (duplicates
# rather than loss).
spool_position_corrupt = Event(
    "spool_position_corrupt", WARNING, "spool of input {input}: position.json is corrupt "
    "({reason}); replaying its segments from their start", "input path reason", LOGGER)
# `position`: what position.json holds (a JSON object).
spool_position_out_of_range = Event(
    "spool_position_out_of_range", WARNING, "spool of input {input}: position.json names "
    "no byte of its segments ({position!r}); replaying them from their start",
    "input path position", LOGGER)
spool_prepend_completed = Event(
    "spool_prepend_completed", INFO, "completed a spool prepend interrupted by a crash",
    "input", LOGGER)
# After a graceful stop's prepend was committed: the intent on disk finishes it.
spool_position_save_failed = Event(
    "spool_position_save_failed", ERROR, "cannot save the spool position after a stop "
    "({reason}); the next start completes it", "input reason", LOGGER)
