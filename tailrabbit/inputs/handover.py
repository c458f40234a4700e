"""A pipe reader's unfinished line outlives the reader: it is handed to the next one.

A writer mid-line (stdio buffering, nginx's `buffer=` writes of 64 KiB) has put the first
part of a line into the pipe; the rest comes with its next write. When the reader that
holds that first part goes away while the writer stays, publishing the part as a line
tears the line in two (the rest arrives as another). So:
  - a reload that replaces a FIFO or stdin input (a reading key changed): the new reader
    opens first and waits; the old one, stopped, hands it what its framer held
    (`Handover`), and only then does the new one read. No fault excuses a torn line here.
  - a stop while a FIFO's writer still holds the pipe: the unfinished part is kept in
    state_dir (`save_unfinished`, the input's spool directory, crash-safe) and the next
    start begins with it (`take_unfinished`), if a writer holds the FIFO then; if none
    does, the writer finished without a last "\n" and the part is a line of its own.
A writer that went away (EOF) ends its line: that is published as it is, as always.
Both carry the stream the part was read from (`stream`, a kept file the FIFO's path): a
reload or a restart that points the input at another FIFO, or makes it stdin, reads
another stream, where the part is a line of its own (a line that ends there, since its
rest goes to a pipe nobody reads), never the start of that stream's first line.
"""

import os

from gevent.event import Event

from tailrabbit.atomic import discard, write_file
from tailrabbit.framing import Carry
from tailrabbit.inputs.base import framed_alone
from tailrabbit.line import Batch
from tailrabbit.spool.files import make_private_directory

UNFINISHED = "unfinished-line"          # in the input's spool directory
_HEADER = b"tailrabbit unfinished line 1 skipping=%d path=%s\n"   # path: hex of the FIFO's


class Handover:
    """From a replaced reader to its successor: `give` once (the first call counts), `take`
    waits for it. The replacer gives None after the old reader stopped, in case it held
    nothing (it was between writers, or stopped outside its read loop)."""

    def __init__(self):
        self._given = Event()
        self._carry = None
        self.stream = None          # what the giver read (Input.stream)

    def give(self, carry, stream=None):
        if not self._given.is_set():
            self._carry, self.stream = carry, stream
            self._given.set()

    def take(self):
        self._given.wait()
        return self._carry


def unfinished_path(spool_directory):
    return os.path.join(spool_directory, UNFINISHED)


class Kept(Carry):
    """A Carry read back from the kept file, with the path of the FIFO it was read from
    (None: a file of a version that did not record it)."""
    path = None


def save_unfinished(spool_directory, carry, path=None):
    """Keep `carry`, read from the FIFO `path`, for the next start (0600 in the 0700
    spool directory: log content)."""
    make_private_directory(spool_directory)
    write_file(unfinished_path(spool_directory),
               _HEADER % (int(carry.skipping),
                          os.fsencode(path).hex().encode() if path else b"-")
               + carry.data)


def take_unfinished(spool_directory, remove=True):
    """The unfinished line a stop kept, or None; the file is removed (the reader holds it
    now, and a stop keeps it again if it is still unfinished then) unless `remove` is
    False (the caller removes it once the line is safe elsewhere)."""
    path = unfinished_path(spool_directory)
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except OSError:         # none kept (or no spool directory: the spool says why)
        return None
    header, _, data = content.partition(b"\n")
    if remove:
        discard(path)
    fields = header.split(b" ")
    if fields[:4] != [b"tailrabbit", b"unfinished", b"line", b"1"] or len(fields) < 5 \
            or not fields[4].startswith(b"skipping="):
        return None
    kept = Kept(data, fields[4] == b"skipping=1")
    if len(fields) > 5 and fields[5].startswith(b"path=") and fields[5] != b"path=-":
        try:
            kept.path = os.fsdecode(bytes.fromhex(fields[5][5:].decode("ascii")))
        except ValueError:
            pass                        # unknown: resumed as before
    return kept


def spool_kept_line(settings, spool):
    """A FIFO input kept its unfinished line at a stop and is no FIFO now (stdin, a
    file): no writer will finish the line, so it is a line of its own, spooled after
    what that stop spooled (InputSet.create)."""
    kept = take_unfinished(spool.directory, remove=False)
    if kept is not None:
        framed = framed_alone(settings, kept)
        spool.append(Batch(settings.name, framed.lines, truncated=framed.truncated))
    discard(unfinished_path(spool.directory))           # spooled first, then removed
