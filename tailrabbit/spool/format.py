"""The bytes of a spool segment: encoding a batch, reading one back, and finding where
valid batches start again after damage.

A segment is a sequence of batches, each a header line `count timestamp truncated-indexes`
followed by exactly `count` lines (lines never contain "\\n", so nothing is escaped and a
batch costs one write). This is the format every earlier version wrote, kept so a spool
left by an upgrade replays. A multiline event holds "\\n"s: a batch with such events gets a
fourth header field, `sizes`, the number of lines of each event, comma-separated (their sum
is `count`, which stays the number of lines that follow); its truncated indexes are
events'. Older versions never wrote it; a header with it is read only by this one.
A file's batch (spooled at a stop: lines no file gives again) then gets `p=HEX` (its
path) and `o=...` (its lines' offsets), so it replays with the `path` and `offset`
headers it had live (origin.py). A pipe's batch has neither: its bytes are what every
earlier version wrote, and a 3- or 4-field header reads as it always did. Like `sizes`,
the new fields are read only by this version (an older one, after a downgrade, counts
such a batch as damaged and skips it, logged).

Reading never trusts the content: a header must be exactly two runs of ASCII digits and a
comma list of indexes below the count, and a count can never exceed the bytes left in the
segment (every line takes at least its "\\n"), so a damaged count can neither crash the
reader nor make it loop over lines that are not there.

After damage, `resync` looks for the first line start from which whole batches parse, up to
the segment's end or RESYNC_BATCHES of them in a row. The format has no length or checksum,
so a log line that happens to look like a header could be taken for one; requiring a run of
valid batches makes that a practical impossibility for log content, and costs at most a few
batches of reading per candidate. Rejected: a new format with a magic, a byte length and a
CRC per batch (safe resync, detects bit flips); it would need versioning and two readers for
a case (a damaged spool) that already has a counted, logged outcome here.
"""

from tailrabbit.line import Batch
from tailrabbit.spool.origin import encode_origin, is_origin_field, offsets_of, parse_origin

RESYNC_BATCHES = 4        # valid batches in a row that prove a resync point
RESYNC_BUDGET = 8         # bytes read to prove candidates, per byte of damaged segment
MAX_COUNT_DIGITS = 19     # a count or timestamp longer than this is damage, not a number
# How much of a line resync reads to test it as a header: a file batch's header holds its
# path in hex and its offsets' exceptions, often past 200 bytes (readline stops at the
# line's end, so a log line costs its length, read once more).
RESYNC_PROBE = 1 << 16


class Damaged(Exception):
    """The bytes at an offset are not a whole, valid batch; the message says why."""


def encode(batch):
    truncated = ",".join(str(i) for i in sorted(batch.truncated or ()))
    body = b"\n".join(batch.lines)
    count = body.count(b"\n") + 1
    if count == len(batch.lines):
        header = b"%d %d %s" % (count, batch.timestamp, truncated.encode())
    else:
        sizes = b",".join(b"%d" % (line.count(b"\n") + 1) for line in batch.lines)
        header = b"%d %d %s %s" % (count, batch.timestamp, truncated.encode(), sizes)
    return header + encode_origin(batch) + b"\n" + body + b"\n"


def parse_header(header):
    """(count, timestamp, truncated indexes, event sizes or None, origin) of a header line
    (with its "\\n"), or Damaged. `origin`: (path or None, offsets spec or None)."""
    if not header.endswith(b"\n"):
        raise Damaged("a batch header without its end of line")
    fields = header[:-1].split(b" ")
    if not 3 <= len(fields) <= 6:
        raise Damaged(f"a batch header with {len(fields)} fields instead of 3 to 6")
    count, timestamp, truncated = fields[:3]
    for name, value in (("count", count), ("timestamp", timestamp)):
        if not (value.isdigit() and len(value) <= MAX_COUNT_DIGITS):
            raise Damaged(f"a batch header whose {name} is not a number: {value[:40]!r}")
    count = int(count)
    if count == 0:
        raise Damaged("a batch header with a count of 0")
    rest = fields[3:]
    sizes = _sizes(rest.pop(0), count) if rest and not is_origin_field(rest[0]) else None
    items = len(sizes) if sizes is not None else count
    indexes = set()
    for index in truncated.split(b",") if truncated else ():
        if not (index.isdigit() and len(index) <= MAX_COUNT_DIGITS and int(index) < items):
            raise Damaged(f"a batch header with a bad truncated index: {index[:40]!r}")
        indexes.add(int(index))
    try:
        origin = parse_origin(rest, items)
    except ValueError as error:
        raise Damaged(str(error)) from None
    return count, int(timestamp), indexes, sizes, origin


def _sizes(field, count):
    """The lines of each event: positive numbers adding up to `count`, or Damaged."""
    sizes = []
    for size in field.split(b","):
        if not (size.isdigit() and len(size) <= MAX_COUNT_DIGITS and int(size) > 0):
            raise Damaged(f"a batch header with a bad event size: {size[:40]!r}")
        sizes.append(int(size))
    if sum(sizes) != count:
        raise Damaged(f"a batch header whose event sizes add up to {sum(sizes)}, not {count}")
    return sizes


def read_batch(handle, offset, end, input_name):
    """The batch at `offset` of a segment whose valid bytes end at `end`:
    (Batch, offset after it). Raises Damaged; reads at most `end - offset` bytes."""
    handle.seek(offset)
    header = handle.readline(end - offset)
    count, timestamp, truncated, sizes, (path, spec) = parse_header(header)
    position = offset + len(header)
    if count > end - position:
        raise Damaged(f"a batch header announcing {count} lines with only "
                      f"{end - position} bytes left in the segment")
    lines = []
    for _ in range(count):
        line = handle.readline(end - position)
        if not line.endswith(b"\n"):
            raise Damaged(f"a batch of {count} lines with only {len(lines)} whole lines "
                          f"before the end of the segment")
        position += len(line)
        lines.append(line[:-1])
    if sizes is not None:
        physical = iter(lines)
        lines = [b"\n".join(next(physical) for _ in range(size)) for size in sizes]
    try:
        offsets = offsets_of(spec, lines) if spec is not None else None
    except ValueError as error:
        raise Damaged(str(error)) from None
    # A file's lines keep their path and offsets (the headers they had live); the replay
    # still gives the batch the spool's mark (replay.py): its confirm moves the spool's
    # position, never a file's checkpoint.
    return Batch(input_name, lines, offsets, truncated=truncated or None,
                 timestamp=timestamp, path=path), position


def resync(handle, offset, end):
    """The first line start after `offset` where valid batches begin again (see the module
    docstring), or `end` when there is none. The batches read to prove candidates are
    bounded by RESYNC_BUDGET times the bytes scanned, so crafted content (every line a
    header announcing most of the segment) cannot make this quadratic: past the budget,
    the rest of the segment is given up (and counted by the caller)."""
    handle.seek(offset)
    position, budget = offset, RESYNC_BUDGET * (end - offset) + (1 << 20)
    while position < end:
        line = handle.readline(end - position)
        if not line.endswith(b"\n"):
            return end
        position += len(line)
        if position >= end:
            return end
        proven, cost = _proves_resync(handle, position, end)
        if proven:
            return position
        budget -= cost
        if budget < 0:
            return end
        handle.seek(position)
    return end


def _proves_resync(handle, offset, end):
    """(True if RESYNC_BATCHES valid batches, or valid batches up to `end`, start at
    `offset`; bytes read to find out)."""
    handle.seek(offset)
    try:
        parse_header(handle.readline(min(end - offset, RESYNC_PROBE)))
    except Damaged:                  # the cheap test that rejects almost every line
        return False, 0
    position = offset
    for _ in range(RESYNC_BATCHES):
        try:
            _, position = read_batch(handle, position, end, None)
        except Damaged:
            return False, handle.tell() - offset
        if position == end:
            return True, position - offset
    return True, position - offset


def count_lines(handle, offset, end):
    """Lines (ends of line, and a last unterminated piece) between two offsets."""
    handle.seek(offset)
    lines, left, last = 0, end - offset, b""
    while left > 0:
        chunk = handle.read(min(left, 1 << 20))
        if not chunk:
            break
        lines += chunk.count(b"\n")
        left -= len(chunk)
        last = chunk[-1:]
    return lines + (1 if last and last != b"\n" else 0)
