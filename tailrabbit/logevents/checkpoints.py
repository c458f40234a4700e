"""Events of the checkpoint store (tailrabbit/files/checkpoints.py): what loading a state
file found wrong. Each is survived: the files concerned are read again from their start
(duplicates rather than loss).

`path` is the checkpoint file (`state_dir/checkpoints-<input>.json`, or its `.new` temp
file left by an interrupted write).
"""

from tailrabbit.logevents.event import WARNING, Event

LOGGER = "tailrabbit.files"

# `entry`: the entry's repr, cut at 200 characters (a forged file may hold anything).
checkpoint_entry_malformed = Event(
    "checkpoint_entry_malformed", WARNING, "{path}: skipping a malformed checkpoint entry: "
    "{entry}; its file is read again from the start", "path entry", LOGGER)
# A link planted where tailrabbit keeps its own files is never read through (a forged
# file would set the paths and offsets it resumes from).
checkpoints_symlink_refused = Event(
    "checkpoints_symlink_refused", WARNING, "{path} is a symbolic link, not a file "
    "tailrabbit wrote; not read", "path", LOGGER)
checkpoints_unreadable = Event(
    "checkpoints_unreadable", WARNING, "{path}: cannot read checkpoints ({reason})",
    "path reason", LOGGER)
checkpoints_corrupt = Event(
    "checkpoints_corrupt", WARNING, "{path} is corrupt ({reason}); files of input {input} "
    "are read again from their start (duplicates rather than loss)", "path reason input",
    LOGGER)
checkpoints_not_private = Event(
    "checkpoints_not_private", WARNING, "{path} is readable by others and cannot be made "
    "private ({reason})", "path reason", LOGGER)
