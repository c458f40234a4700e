"""Where a batch came from, as a value that knows what its confirm means.

A Batch read from a file or replayed from a spool carries a mark; once the broker has
confirmed every line of it, the publisher's callback calls `mark.confirmed(batch)`:
  - FilePosition: the file's checkpoint may move to the batch's end offset, unless the
    file was truncated since the batch was read (a newer generation: a late confirm
    must not move the checkpoint of the new content up to an offset of the old);
  - SpoolPosition: the spool's confirmed position may move to the batch's end, and the
    segments before it go.
Batches of a pipe read live carry none (nothing to move: the spool is their safety net).
"""


class FilePosition:
    __slots__ = ("record", "generation")
    splittable = True                        # a part confirms up to its own end offset

    def __init__(self, record):
        self.record = record                 # checkpoints.Record of the file
        self.generation = record.generation

    @property
    def path(self):
        """The file's name when it was opened (the `path` header of its lines)."""
        return self.record.path

    def confirmed(self, batch):
        self.record.confirm(self.generation, batch.end_offset)


class SpoolPosition:
    __slots__ = ("spool", "segment")
    splittable = False                       # a spool record is confirmed whole
    path = None                              # the input's own path: the FIFO's

    def __init__(self, spool, segment):
        self.spool = spool
        self.segment = segment               # the segment the batch was read from

    def confirmed(self, batch):
        self.spool.confirm(self.segment, batch.end_offset)
