"""The Batch: lines read together from one input, the unit that flows to the broker.

Lines travel in batches (one per read of a pipe or file chunk) rather than one object per
line: the queue, the publisher and the confirm tracker then do their bookkeeping once per
batch, which is what lets a Python publisher keep up with rabbitmq-c. A batch knows where
its lines came from (`source`, a mark from marks.py, and `end_offset`) so a file checkpoint
can advance only when the broker confirmed every line of it. File batches also carry the path of the file they were
read from (the `path` header: with a glob, the match, not the pattern).
"""

import time


class Batch:
    __slots__ = ("input", "lines", "offsets", "truncated", "timestamp", "source",
                 "end_offset", "start", "path", "_nbytes")

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

    @property
    def nbytes(self):
        """Bytes of the lines (without their "\n"), counted once: the buffer's and the
        confirm window's byte bounds both need it, per batch, never per line."""
        if self._nbytes is None:
            self._nbytes = sum(map(len, self.lines))
        return self._nbytes

    def __len__(self):
        return len(self.lines)

    def split(self, count):
        """(the first `count` lines, the rest) as two batches of the same origin, or None
        when the origin cannot confirm a part (a spool record is confirmed whole). For a
        nack of a line inside a batch: the lines before it were stored, only it and the
        rest go again (a 300-line read into a queue with room for 50 was resent whole,
        forever)."""
        source = self.source
        if source is not None and not (getattr(source, "splittable", False)
                                       and self.offsets is not None):
            return None
        offsets, truncated = self.offsets, self.truncated or ()
        head = Batch(self.input, self.lines[:count],
                     offsets[:count] if offsets is not None else None,
                     {i for i in truncated if i < count} or None, source,
                     offsets[count] if offsets is not None else None, self.timestamp,
                     self.path)
        tail = Batch(self.input, self.lines[count:],
                     offsets[count:] if offsets is not None else None,
                     {i - count for i in truncated if i >= count} or None, source,
                     self.end_offset, self.timestamp, self.path)
        return head, tail

    def __repr__(self):
        return f"<Batch {self.input} {len(self.lines)} lines>"
