"""Where a batch came from, as a value that knows what its confirm means.

A Batch read from a file or replayed from a spool carries a mark; once the broker has
confirmed every line of it, the publisher's callback calls `mark.confirmed(batch)`:
  - FilePosition: the file's checkpoint may move to the batch's end offset, unless the
    file was truncated since the batch was read (a newer generation: a late confirm
    must not move the checkpoint of the new content up to an offset of the old);
  - SpoolPosition: the spool's confirmed position may move to the batch's end, and the
    segments before it go;
  - PartOfRecord: lines of a spool record before its last part, after a nack split it:
    nothing moves until the last part is confirmed.
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


class PartOfRecord:
    """The lines of a record confirmed whole (a spool record) before its last part, when a
    nack inside it split it (Batch.part). Their confirm moves nothing: the last part keeps
    the record's mark and end, and is released after these (in order), so the spool's
    position passes the record only when all of it is stored. Rejected: confirming the
    record with its first part (a crash then loses the rest), keeping it whole (a queue
    at its reject-publish limit got the same head at every retry, forever), and no mark
    at all (a batch without one is a pipe's live lines: a stop that spools these again
    would count them as newly spooled)."""
    __slots__ = ("whole",)
    splittable = True                        # any part of it moves nothing

    def __init__(self, whole):
        self.whole = whole                   # the record's own mark

    @property
    def path(self):
        return self.whole.path

    def confirmed(self, batch):
        pass
