"""Events of the file input (inputs/logfile.py) and its helpers in files/: rotation,
truncation, copies, refused matches, directory watches.

`path` is the file's name as the input sees it (for `file_missing`, the configured path
or glob); `count` a number of lines, `total` the input's running count of the same.
"""

from tailrabbit.logevents.event import INFO, WARNING, Event

LOGGER = "tailrabbit.input"

file_missing = Event(
    "file_missing", WARNING, "{path} does not exist yet; waiting for it",
    "input path", LOGGER)
file_rotated = Event(
    "file_rotated", INFO, "{path} was rotated or deleted; reading the old file to its end",
    "input path", LOGGER)
file_rotated_while_stopped = Event(
    "file_rotated_while_stopped", INFO,
    "{path} was rotated to {rotated} while we were stopped; read it from offset {offset}",
    "input path rotated offset", LOGGER)
file_shorter_than_checkpoint = Event(
    "file_shorter_than_checkpoint", WARNING,
    "{path} is shorter than its checkpoint; reading it from the start",
    "input path", LOGGER)
file_copytruncated = Event(
    "file_copytruncated", INFO,
    "{path} was copied and truncated; read its tail from {copy}",
    "input path copy", LOGGER)
file_truncated = Event(
    "file_truncated", WARNING,
    "{path} was truncated; reading it again from the start (lines written after our "
    "last read and before the truncation are lost)",
    "input path", LOGGER)
# A truncated file whose copy is not proven by identity: a new file that starts with the
# same bytes is taken for it.
file_copy_assumed = Event(
    "file_copy_assumed", WARNING,
    "{path} was truncated; {copy}, new and starting with the same bytes, is taken for its "
    "copy: its first {count} lines are not shipped again ({total} such lines so far)",
    "input path copy count total", LOGGER)
file_is_copy = Event(
    "file_is_copy", INFO,
    "{path} is a copy of {original} (the same {bytes} bytes); its lines are shipped from "
    "{original}, not again",
    "input path original bytes", LOGGER)
# A copy that grew past its original: read from `offset`, the lines before it skipped.
file_copy_grew = Event(
    "file_copy_grew", WARNING,
    "{path} grew with lines that {original} does not have; it is read from offset "
    "{offset}; its first {count} lines ({offset} bytes) are the same as {original}'s and "
    "are not shipped again ({total} such lines so far)",
    "input path original offset count total", LOGGER)


def _symlink_text(f):
    under = "" if f["link"] == f["path"] else f" (under {f['link']})"
    return (f"{f['path']} matches {f['pattern']} but is a symbolic link{under} to "
            f"{f['target']}; not read (follow_symlinks = True reads links)")


# `link`: the symbolic link itself, the path or one of its directories.
file_symlink_skipped = Event(
    "file_symlink_skipped", WARNING, _symlink_text, "input path pattern link target",
    LOGGER)
# Compressed matches and matches under state_dir: one per input and reason.
file_match_refused = Event(
    "file_match_refused", WARNING,
    "{path} matches {pattern} but is not read, nor any other match that is {reason}",
    "input path pattern reason", LOGGER)
watch_failed = Event(
    "watch_failed", WARNING, "cannot watch {path} ({reason}); checking it periodically "
    "instead", "path reason", "tailrabbit.files")
