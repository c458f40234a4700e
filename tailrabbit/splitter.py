"""Cut a byte stream into lines, exactly: no decoding, no stripping, offsets kept.

The body of a message is the line's bytes without its trailing "\n". "\r", tabs, NULs and
invalid UTF-8 pass unchanged; empty lines are skipped (they still advance the offset).
Lines longer than `max_line_bytes` are cut there, flagged truncated, and the rest up to the
next "\n" is skipped, even when it arrives over several reads.

A splitter started inside a line (a file resumed at an offset whose previous byte is not
"\n": a checkpoint inside the skipped rest of a cut line, start_at = end while the writer
is mid-line) is put in that skipping state with `skip_to_next_line()`: what comes before
the next "\n" is the rest of a line that started before us, never a line of its own.
"""

from itertools import accumulate


def _next_offset(offset, line):
    return offset + len(line) + 1


class LineSplitter:
    def __init__(self, max_line_bytes, offset=0, keep_empty=False):
        self.max_line_bytes = max_line_bytes
        # multiline keeps empty lines: a blank line inside a traceback is part of its bytes
        self.keep_empty = keep_empty
        self.offset = offset          # stream offset of the first byte not yet consumed
        self._partial = b""           # bytes of an unterminated line, not yet consumed
        self._skipping = False        # inside the discarded rest of a truncated line

    def skip_to_next_line(self):
        """Discard the bytes up to and including the next "\n" (we start inside a line)."""
        self._partial = b""
        self._skipping = True

    def feed(self, chunk, want_offsets=False):
        """Split `chunk` into (lines, offsets or None, set of truncated indexes or None).

        Complete lines only; an unterminated tail is kept for the next feed or for flush(),
        unless it is already longer than the limit (then its first part is emitted now).
        `self.offset` ends just past the last byte consumed.
        """
        if self._partial:
            chunk = self._partial + chunk
            self._partial = b""
        parts = chunk.split(b"\n")
        tail = parts.pop()
        limit = self.max_line_bytes
        if (not self._skipping and len(tail) <= limit
                and (not parts or max(map(len, parts)) <= limit)):
            # The fast path: a chunk of ordinary lines, the common case by far.
            start = self.offset
            self.offset = start + len(chunk) - len(tail)
            self._partial = tail
            if not want_offsets:
                return (parts if self.keep_empty else [line for line in parts if line]), \
                    None, None
            offsets = list(accumulate(parts, _next_offset, initial=start))
            offsets.pop()
            if b"" in parts and not self.keep_empty:
                kept = [i for i, line in enumerate(parts) if line]
                return [parts[i] for i in kept], [offsets[i] for i in kept], None
            return parts, offsets, None
        lines, offsets, truncated = [], [], set()
        offset = self.offset
        for line in parts:
            start = offset
            offset += len(line) + 1
            if self._skipping:
                self._skipping = False
            elif line or self.keep_empty:
                self._append(lines, offsets, truncated, line, start)
        if self._skipping:
            offset += len(tail)
        elif len(tail) > limit:
            self._append(lines, offsets, truncated, tail, offset)
            offset += len(tail)
            self._skipping = True
        else:
            self._partial = tail
        self.offset = offset
        return lines, offsets if want_offsets else None, truncated or None

    def _append(self, lines, offsets, truncated, line, start):
        if len(line) > self.max_line_bytes:
            truncated.add(len(lines))
            line = line[:self.max_line_bytes]
        lines.append(line)
        offsets.append(start)

    def take_partial(self):
        """(the unterminated line's bytes, skipping): what a successor reader must start
        with, as if it had read them itself (Framer.take_back). Empties this splitter."""
        partial, skipping = self._partial, self._skipping
        self._partial, self._skipping = b"", False
        self.offset += len(partial)
        return partial, skipping

    def flush(self):
        """The unterminated tail as a final line (writer gone, EOF): (line, offset) or None."""
        tail, self._partial = self._partial, b""
        self._skipping = False
        start = self.offset
        self.offset += len(tail)
        return (tail, start) if tail else None
