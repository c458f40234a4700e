"""Where a spooled file batch was read: the optional `p=` and `o=` fields of a spool batch
header (format.py), so lines replayed from the spool carry the `path` and `offset` headers
they had live. Consumers dedupe on (path, offset); without these, a file's lines spooled
at a stop (a rotated file deleted while the broker was down) came back with the input's
`path` (a glob's pattern) and no `offset`, and were new lines to every consumer.

- `p=HEX`: the file's path (Batch.path: a glob's match, as named when it was opened), its
  bytes (UTF-8 with surrogateescape, as frames.py sends it) in lowercase hex: a path may
  hold any byte but NUL, and a header holds no space or newline. Costs 2 bytes per path
  byte once per batch (not per line).
- `o=FIRST[,I+G|,I-G]...`: the offset of each line (event) of the batch. Offsets are
  mostly contiguous (line i+1 starts at offset_i + len(line_i) + 1), so only the first is
  written, and then, for a line i that does not start where the one before it ended (empty,
  filtered or cut lines skipped between them), its index and the gap to where it was
  expected. A batch of contiguous lines costs `o=` and one number, whatever its length.

Rejected: absolute offsets per exception (twice the digits for the usual gap of one blank
line); a per-line list (a batch of 10,000 short lines would carry a 100 KB header); a
second file per segment for the metadata (a crash between the two writes; resync could not
find it).

Parsing is as strict as the rest of the header: canonical hex with no NUL, increasing
indexes below the batch's line count, non-zero gaps, numbers of at most 19 digits; the
offsets themselves are computed only once the lines were read (the count is then proven
against the bytes present), and each must fit the signed 64-bit `offset` header. Errors
are ValueError, which format.py turns into its Damaged (this module does not import it:
format.py imports this one).
"""

import re

MAX_DIGITS = 19                     # as format.MAX_COUNT_DIGITS
MAX_OFFSET = (1 << 63) - 1          # the `offset` header is a signed 64-bit integer
_HEX = re.compile(rb"(?:[0-9a-f]{2})+")
_EXCEPTION = re.compile(rb"([0-9]{1,19})([+-])([0-9]{1,19})")


def is_origin_field(field):
    return field[:2] in (b"p=", b"o=")


def encode_origin(batch):
    """The ` p=... o=...` header suffix of a batch (b"" for a pipe's: nothing known).
    A path that cannot be written (not encodable, holds a NUL) or offsets that could not
    be read back (not one per line, out of range) are left out, never raised: the batch
    is still spooled, as it was before these fields existed."""
    suffix = b""
    path = batch.path
    if path is not None:
        try:
            data = path.encode("utf-8", "surrogateescape") if isinstance(path, str) \
                else bytes(path)
        except UnicodeEncodeError:
            data = b""
        if data and b"\0" not in data:
            suffix += b" p=" + data.hex().encode("ascii")
    offsets, lines = batch.offsets, batch.lines
    if offsets is not None and len(offsets) == len(lines) and lines \
            and min(offsets) >= 0 and max(offsets) <= MAX_OFFSET:
        parts = [b"o=%d" % offsets[0]]
        expected = offsets[0] + len(lines[0]) + 1
        for index in range(1, len(lines)):
            offset = offsets[index]
            if offset != expected:
                parts.append(b"%d%+d" % (index, offset - expected))
            expected = offset + len(lines[index]) + 1
        suffix += b" " + b",".join(parts)
    return suffix


def parse_origin(fields, items):
    """(path or None, offset spec or None) of a header's origin fields: at most one `p=`
    then at most one `o=`. `items`: the batch's lines (events). Raises ValueError."""
    path = spec = None
    rest = list(fields)
    if rest and rest[0][:2] == b"p=":
        path = _path(rest.pop(0)[2:])
    if rest and rest[0][:2] == b"o=":
        spec = _offsets_spec(rest.pop(0)[2:], items)
    if rest:
        raise ValueError(f"a batch header with an unknown field: {rest[0][:40]!r}")
    return path, spec


def _path(value):
    if not _HEX.fullmatch(value):
        raise ValueError(f"a batch header whose path is not hex: {value[:40]!r}")
    data = bytes.fromhex(value.decode("ascii"))
    if b"\0" in data:
        raise ValueError("a batch header whose path holds a NUL")
    return data.decode("utf-8", "surrogateescape")


def _offsets_spec(value, items):
    """(first offset, [(index, gap), ...]): indexes increasing in 1..items-1, gaps != 0."""
    first, *rest = value.split(b",")
    if not (first.isdigit() and len(first) <= MAX_DIGITS and int(first) <= MAX_OFFSET):
        raise ValueError(f"a batch header with a bad first offset: {first[:40]!r}")
    exceptions, previous = [], 0
    for item in rest:
        match = _EXCEPTION.fullmatch(item)
        if match is None:
            raise ValueError(f"a batch header with a bad offset gap: {item[:40]!r}")
        index, gap = int(match.group(1)), int(match.group(3))
        if not previous < index < items or gap == 0:
            raise ValueError(f"a batch header with a bad offset gap: {item[:40]!r}")
        exceptions.append((index, gap if match.group(2) == b"+" else -gap))
        previous = index
    return int(first), exceptions


def offsets_of(spec, lines):
    """The offset of each of `lines` (events, without their "\\n") per a parsed spec,
    or ValueError if one falls outside the `offset` header's range."""
    first, exceptions = spec
    offsets, expected, gaps = [], first, dict(exceptions)
    for index, line in enumerate(lines):
        expected += gaps.get(index, 0)
        if not 0 <= expected <= MAX_OFFSET:
            raise ValueError(f"a batch header whose offsets leave 0..2^63-1 at line {index}")
        offsets.append(expected)
        expected += len(line) + 1
    return offsets
