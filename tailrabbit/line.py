"""The Batch: lines read together from one input, the unit that flows to the broker.

Lines travel in batches (one per read of a pipe or file chunk) rather than one object per
line: the queue, the publisher and the confirm tracker then do their bookkeeping once per
batch, which is what lets a Python publisher keep up with rabbitmq-c. A batch knows where
its lines came from (`source`, a mark from marks.py, and `end_offset`) so a file checkpoint
can advance only when the broker confirmed every line of it. File batches also carry the path of the file they were
read from (the `path` header: with a glob, the match, not the pattern).
"""

import time

from tailrabbit.marks import PartOfRecord


class Batch:
    __slots__ = ("input", "lines", "offsets", "truncated", "timestamp", "source",
                 "end_offset", "start", "path", "_nbytes", "message_starts", "riders")

    def __init__(self, input_name, lines, offsets=None, truncated=None, source=None,
                 end_offset=None, timestamp=None, path=None):
        self.input = input_name          # the input's name
        self.lines = lines               # list of bytes, each without its "\n", none empty
        self.offsets = offsets           # file inputs: byte offset of each line's start
        self.truncated = truncated       # set of indexes of truncated lines, or None
        self.source = source             # a marks.FilePosition or SpoolPosition, or None
        self.end_offset = end_offset     # file inputs: offset just after the last line
        self.start = None                # spool replays: where the batch began on disk
        # The file the lines were read from, as named when it was opened. Inputs.base does
        # not pass it: a file batch's mark names it.
        self.path = path if path is not None or source is None else source.path
        self.timestamp = int(time.time()) if timestamp is None else timestamp
        self._nbytes = None
        # Set by a batching encoder (batchframes.py) when its messages hold several
        # lines: the index of each message's first line (a nack names a message).
        self.message_starts = None
        self.riders = None               # batches to release right after this one

    @property
    def nbytes(self):
        """Bytes of the lines (without their "\n"), counted once: the buffer's and the
        confirm window's byte bounds both need it, per batch, never per line."""
        if self._nbytes is None:
            self._nbytes = sum(map(len, self.lines))
        return self._nbytes

    def __len__(self):
        return len(self.lines)

    def part(self, start, end):
        """Lines [start, end) as a batch of the same origin (the whole: this one). For a
        nack inside a batch: only the lines not stored go again, and the stored ones are
        released in order. A part confirms up to its own end when its origin allows it
        (a file: offsets); a part before the last of a spool record, confirmed whole,
        gets a mark that moves nothing (marks.PartOfRecord) and the last part keeps the
        record's mark and end. Riders (below) go with the last part."""
        count = len(self.lines)
        if start == 0 and end == count:
            return self
        source, offsets, truncated, last = self.source, self.offsets, self.truncated, \
            end == count
        if not last and source is not None and not isinstance(source, PartOfRecord) \
                and not (source.splittable and offsets is not None):
            source = PartOfRecord(source)
        part = Batch(self.input, self.lines[start:end],
                     offsets[start:end] if offsets is not None else None,
                     {i - start for i in truncated if start <= i < end} or None
                     if truncated else None, source,
                     self.end_offset if last else
                     offsets[end] if offsets is not None else None,
                     self.timestamp, self.path)
        if last and self.riders:
            part.riders = list(self.riders)
        return part

    def carry(self, riders):
        """Release `riders` (batches the broker stored after a line of this one it
        refused) right after this batch is confirmed: their marks must not move past
        its lines (a file's checkpoint, a spool's position), and their lines must not
        go again."""
        if self.riders is None:
            self.riders = []
        self.riders.extend(riders)

    def __repr__(self):
        return f"<Batch {self.input} {len(self.lines)} lines>"
