"""Bytes read -> what an input publishes: lines, or events (multiline), minus filtered ones.

One Framer per stream (a pipe, a file from an offset). It chains the three steps every
input shares, so the inputs only read and hand on:
  1. LineSplitter: bytes into lines, offsets kept (splitter.py);
  2. EventJoiner, with multiline: lines into events (multiline.py);
  3. include/exclude: Python's `re`, compiled once and matched against bytes (`search`,
     like grep), over each line or each whole event.
`end_offset` of what comes out is where a file's checkpoint may move once it is confirmed:
the first byte of an event still held, else everything consumed (filtered lines
included, so they count as done).
"""

import re
import time
from collections import namedtuple

from tailrabbit.multiline import EventJoiner, start_detector
from tailrabbit.splitter import LineSplitter

# What a framer held unfinished, as raw bytes for another framer: the held event's lines
# (each with its "\n"), then the unterminated line; `skipping`: inside the discarded rest
# of a line cut at max_line_bytes.
Carry = namedtuple("Carry", "data skipping")

# lines: bytes to publish; offsets: their first bytes (files) or None; truncated: indexes
# or None; end_offset: the checkpoint bound; read: lines or events read; filtered: not
# published because of include/exclude
Framed = namedtuple("Framed", "lines offsets truncated end_offset read filtered")


def compile_filter(pattern):
    return re.compile(pattern.encode("utf-8")).search if pattern is not None else None


class Framer:
    def __init__(self, settings, offset=0, want_offsets=False, clock=time.monotonic):
        self.want_offsets = want_offsets     # files: each line's offset (the header)
        detector = start_detector(settings)
        self.splitter = LineSplitter(settings.max_line_bytes, offset,
                                     keep_empty=detector is not None)
        self.joiner = (EventJoiner(detector, settings.multiline_max_lines,
                                   settings.max_line_bytes) if detector else None)
        self.timeout = settings.multiline_timeout
        self.include = compile_filter(settings.include)
        self.exclude = compile_filter(settings.exclude)
        self.clock = clock
        self.held_since = None           # when the held event last grew

    @property
    def offset(self):
        """First byte not consumed by the splitter (an unterminated line is not)."""
        return self.splitter.offset

    @property
    def end_offset(self):
        """Where a checkpoint may be now: the first byte of the event held, else the first
        byte not consumed."""
        pending = self.joiner.pending_offset if self.joiner is not None else None
        return pending if pending is not None else self.splitter.offset

    def skip_to_next_line(self):
        """The stream starts inside a line: its rest is not a line (splitter.py)."""
        self.splitter.skip_to_next_line()

    def deadline(self):
        """When the held event is due (multiline_timeout after it last grew), or None."""
        if self.joiner is None or not self.joiner.holds:
            return None
        return self.held_since + self.timeout

    def feed(self, chunk):
        lines, offsets, truncated = self.splitter.feed(chunk, self.want_offsets)
        return self._frame(lines, offsets, truncated, flush=False)

    def flush(self):
        """The stream ended (EOF, a writer closed, a file rotated away): its unterminated
        last line and the held event are complete now."""
        tail = self.splitter.flush()
        lines = [tail[0]] if tail else []
        offsets = ([tail[1]] if tail else []) if self.want_offsets else None
        return self._frame(lines, offsets, None, flush=True)

    def take_back(self):
        """What this framer holds unfinished (Carry), for the reader that continues the
        stream: a reload that replaces the reader, a stop while the writer is mid-line.
        Handed over raw, not framed: the successor may cut and join differently (a reload
        changing max_line_bytes or multiline). Empties this framer."""
        held = self.joiner.take_lines() if self.joiner is not None else []
        partial, skipping = self.splitter.take_partial()
        return Carry(b"".join(line + b"\n" for line in held) + partial, skipping)

    def resume(self, carry):
        """Start with what a predecessor held unfinished (take_back), as if read here."""
        framed = self.feed(carry.data)
        if carry.skipping:
            self.splitter.skip_to_next_line()
        return framed

    def expire(self, now=None):
        """The held event if multiline_timeout passed without a new line, else None."""
        due = self.deadline()
        if due is None or (self.clock() if now is None else now) < due:
            return None
        return self._frame([], [] if self.want_offsets else None, None, flush=True)

    def _frame(self, lines, offsets, truncated, flush):
        joiner = self.joiner
        if joiner is not None:
            if lines:
                self.held_since = self.clock()
            lines, offsets, truncated = joiner.feed(lines, offsets, truncated, final=flush)
        read = len(lines)
        lines, offsets, truncated = self._filter(lines, offsets, truncated)
        return Framed(lines, offsets, truncated, self.end_offset, read, read - len(lines))

    def _filter(self, lines, offsets, truncated):
        include, exclude = self.include, self.exclude
        if (include is None and exclude is None) or not lines:
            return lines, offsets, truncated
        keep = [i for i, line in enumerate(lines)
                if (include is None or include(line) is not None)
                and (exclude is None or exclude(line) is None)]
        if len(keep) == len(lines):
            return lines, offsets, truncated
        kept_truncated = None
        if truncated:
            kept_truncated = {new for new, old in enumerate(keep) if old in truncated} or None
        return ([lines[i] for i in keep],
                [offsets[i] for i in keep] if offsets is not None else None,
                kept_truncated)
