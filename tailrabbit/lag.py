"""How far behind tailrabbit is: unshipped bytes per file, and the age of the oldest line
not yet confirmed. Computed only when /metrics is scraped, from state the inputs, the
buffer and the publisher keep anyway: nothing is added to the per-line path.

File lag is `size - confirmed offset` of every open file, from an fstat of the descriptor
the tailer holds (a file renamed away is still measured through it). Rejected: a stat of
the path, which after a rotation names the new file and hides what the old one still
holds. During `rotate_wait` the renamed-away file and its successor carry the same path
(the name the old one was opened under): their lags are summed under that path, which is
what an operator asks ("how much of access.log is not shipped yet"), and keeps one series
per label set as Prometheus requires. A file shorter than its checkpoint (truncated, not yet
noticed by the next poll) counts 0, not a negative lag. The bytes after the last "\\n" (a
line being written) count: they are not shipped until they end.

The oldest unconfirmed line is the minimum of `Batch.timestamp` (its read time, whole
seconds, so the age is right to within a second) over the batches in the memory buffer and
those published and awaiting a confirm or set aside to be published again. Not counted:
lines still on disk in a spool (reading a segment header at every scrape was judged not
worth it; `tailrabbit_lines_spooled_total` shows spooling), a batch an input holds while
blocked on a full buffer, and the unfinished last line or multiline event a splitter holds.
A spool replay carries the original read time, so spooled lines age from when they were
read, even by an earlier process.
"""

import os
import time


def file_lag(inputs):
    """{(input name, path): bytes} over every input that follows files (`followed()`)."""
    lag = {}
    for item in inputs:
        followed = getattr(item, "followed", None)
        if followed is None:
            continue
        for path, fd, record in followed():
            try:
                size = os.fstat(fd).st_size
            except OSError:                 # closed since: nothing left to measure
                continue
            key = (item.name, path)
            lag[key] = lag.get(key, 0) + max(0, size - record.offset)
    return lag


def oldest_unconfirmed_seconds(names, buffer, publisher=None, now=None):
    """{input name: seconds since its oldest line not yet confirmed was read, 0 if none}."""
    now = time.time() if now is None else now
    oldest = buffer.oldest_timestamps()
    if publisher is not None:
        for name, timestamp in publisher.oldest_unconfirmed().items():
            if name not in oldest or timestamp < oldest[name]:
                oldest[name] = timestamp
    return {name: max(0.0, now - oldest[name]) if name in oldest else 0.0 for name in names}
