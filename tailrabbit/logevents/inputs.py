"""Events every input kind shares (inputs/base.py) and the FIFO input's (inputs/fifo.py).

Each has an `input` field, which makes the `input NAME: ` prefix of its text.
"""

from tailrabbit.logevents.event import DEBUG, ERROR, INFO, WARNING, Event

LOGGER = "tailrabbit.input"

# Per batch while the buffer is full: one line, then at most one per WARN_EVERY.
lines_dropped = Event(
    "lines_dropped", WARNING, "buffer full, lines dropped (overflow = drop)",
    "input", LOGGER, limit_by=("input",))
line_truncated = Event(
    "line_truncated", WARNING,
    "a line longer than max_line_bytes = {max_line_bytes} was truncated",
    "input max_line_bytes", LOGGER, limit_by=("input",))

fifo_created = Event(
    "fifo_created", INFO, "created FIFO {path}", "input path", LOGGER)
fifo_writer_closed = Event(
    "fifo_writer_closed", DEBUG, "writer closed {path}; waiting for the next one",
    "input path", LOGGER)
# A stop while the FIFO's writer is mid-line (inputs/handover.py): the first part is kept
# in state_dir and the next start continues the line with what the writer writes next.
unfinished_line_kept = Event(
    "unfinished_line_kept", INFO,
    "kept {bytes} bytes of an unfinished line for the next start (its writer still holds "
    "{path})", "input bytes path", LOGGER)
unfinished_line_resumed = Event(
    "unfinished_line_resumed", INFO,
    "resumed {bytes} bytes of an unfinished line kept at the last stop ({reason})",
    "input bytes reason", LOGGER)
unfinished_line_not_kept = Event(
    "unfinished_line_not_kept", ERROR,
    "cannot keep the unfinished line for the next start ({reason}); spooled as a line",
    "input reason", LOGGER)
# Retried every 5 s for as long as the cause lasts (a missing directory, a FIFO that is
# not ours or writable by others): one ERROR, then a summary at most every WARN_EVERY.
# `reason` says what and names the path.
fifo_cannot_open = Event(
    "fifo_cannot_open", ERROR, "{reason}", "input path reason", LOGGER,
    limit_by=("input",))
