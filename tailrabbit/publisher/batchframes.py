"""Batched and gzipped messages: many lines of one Batch in one basic.publish.

Why: the broker, not tailrabbit, is what limits a message per line. One durable classic
queue costs RabbitMQ 40-60 us of CPU per message with our properties, headers and
confirms, and only a few more for a message 100 times larger (FIELD-NOTES, "Where the
broker's time goes"). So `batch_lines = N` puts up to N consecutive lines in one message.

What a batched message is (the contract's Messages section):
- lines of ONE Batch only: one read of one pipe or one file, so a message never spans two
  files, two rotations of one file, two inputs, or a checkpoint's or spool segment's edge.
  Checkpoints and the spool keep working per Batch; the confirm tracker counts the
  messages `encode` says the Batch became (each takes one delivery tag), and a nack of
  one splits the Batch at that message's first line (`message_starts`: the grouping is
  deterministic, but the tracker does not know the encoder).
- body: each line followed by "\n" (split on "\n" to get the lines back; a line never
  holds "\n"), at most batch_lines lines and batch_bytes bytes; a single line longer than
  batch_bytes goes alone (a message never holds part of a line).
- headers: the input's chosen metadata (`headers`), `offset` = the first line's offset,
  `lines` = how many lines (both omitted with `headers =` empty: the table is absent),
  and `truncated` = an array of the 0-based indexes, within the message, of lines cut at
  max_line_bytes (absent when none was cut; a non-empty array is truthy for consumers
  that only test it). Rejected: `truncated = true` if any, which hides which line.
- Never waits to fill a batch: a Batch of 3 lines is a message of 3 lines. What a read
  gives is what is sent, so latency stays that of a message per line.

`compress = gzip`: the body (a batch or a single line) is gzip data (zlib.compress,
wbits=31 so it is a real gzip member with mtime 0, any gunzip reads it), level 1:
measured ~10x faster than level 6 for ~80% of its ratio on nginx-like lines, and the
point here is throughput. The `content_encoding` property says gzip.

With batch_lines = 1 and compress = none, RouteEncoder's per-line fast paths are used
unchanged (make_encoder); its frames are pinned byte for byte by tests/unit/test_frames.py.
"""

import struct
import zlib

from tailrabbit.publisher.frames import (
    CLASS_BASIC, CONTENT_TYPE, FLAG_HEADERS, FRAME_END, PROPERTY_FLAGS, RouteEncoder,
    _OFFSET_KEY, _TRUNCATED_FIELD, _pack_body_head, _pack_content_head, _pack_offset,
    _pack_timestamp, _pack_u32, _shortstr)

FLAG_CONTENT_ENCODING = 1 << 14
GZIP_LEVEL = 1
GZIP_WBITS = 31                       # 16 + 15: gzip header and trailer, not raw zlib


def _gzip(data):
    """gzip data at GZIP_LEVEL (zlib.compress takes wbits only from Python 3.11 on)."""
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
    return packer.compress(data) + packer.flush()
_LINES_KEY = _shortstr("lines") + b"I"
_TRUNCATED_KEY = _shortstr("truncated") + b"A"
_LENGTHS_KEY = _shortstr("lengths") + b"A"
_pack_i32 = struct.Struct(">i").pack


def make_encoder(channel_id, frame_max, input_settings, **kwargs):
    """The encoder of one input on one channel: per line (fast) unless batched or gzipped."""
    if input_settings.batch_lines > 1 or input_settings.compress != "none":
        return BatchEncoder(channel_id, frame_max, input_settings, **kwargs)
    return RouteEncoder(channel_id, frame_max, input_settings, **kwargs)


class BatchEncoder(RouteEncoder):
    """`encode(batch, out)` appends the frames of the messages a Batch becomes and
    returns how many messages that is."""

    def __init__(self, channel_id, frame_max, input_settings, **kwargs):
        super().__init__(channel_id, frame_max, input_settings, **kwargs)
        self.batch_lines = input_settings.batch_lines
        self.batch_bytes = input_settings.batch_bytes
        self.batched = self.batch_lines > 1
        self.gzip = input_settings.compress == "gzip"
        self.send_lines = self.batched and bool(input_settings.headers)
        # Multiline events hold "\n"s, so a batch of them cannot be split on "\n": the
        # header `lengths` gives each event's bytes. Like `truncated`, it is about the
        # body, not metadata: sent whatever `headers` says.
        self.send_lengths = self.batched and input_settings.joins_lines
        flags = PROPERTY_FLAGS | (FLAG_CONTENT_ENCODING if self.gzip else 0)
        encoding = _shortstr("gzip") if self.gzip else b""
        self.table_head = struct.pack(">H", flags) + _shortstr(CONTENT_TYPE) + encoding
        self.bare_head = (struct.pack(">H", flags & ~FLAG_HEADERS) + _shortstr(CONTENT_TYPE)
                          + encoding)

    def _groups(self, lines):
        """(start, end) of each message: up to batch_lines lines and batch_bytes bytes."""
        count, limit, bound = len(lines), self.batch_lines, self.batch_bytes
        start = 0
        while start < count:
            end = min(count, start + limit)
            if sum(map(len, lines[start:end])) + (end - start) > bound:
                size, end = len(lines[start]) + 1, start + 1   # at least one whole line
                while end < count and end - start < limit:
                    size += len(lines[end]) + 1
                    if size > bound:
                        break
                    end += 1
            yield start, end
            start = end

    def encode(self, batch, out):
        lines = batch.lines
        offsets = batch.offsets if self.send_offset else None
        truncated = sorted(batch.truncated) if batch.truncated else ()
        constant = self._fields(batch.path)
        tail = self.props_tail_head + _pack_timestamp(batch.timestamp) + self.app_id
        channel, method, max_body, append = self.channel_id, self.method_frame, \
            self.max_body, out.append
        starts = []
        for start, end in self._groups(lines):
            if self.batched:
                body = b"\n".join(lines[start:end]) + b"\n"
            else:
                body = lines[start]
            if self.gzip:
                body = _gzip(body)
            fields = constant
            if offsets is not None:
                fields += _OFFSET_KEY + _pack_offset(offsets[start])
            if self.send_lines:
                fields += _LINES_KEY + _pack_i32(end - start)
            if self.send_lengths:
                items = b"".join(b"I" + _pack_i32(len(line)) for line in lines[start:end])
                fields += _LENGTHS_KEY + _pack_u32(len(items)) + items
            cut = [index - start for index in truncated if start <= index < end]
            if cut and self.batched:
                items = b"".join(b"I" + _pack_i32(index) for index in cut)
                fields += _TRUNCATED_KEY + _pack_u32(len(items)) + items
            elif cut:
                fields += _TRUNCATED_FIELD
            props = (self.table_head + _pack_u32(len(fields)) + fields if fields
                     else self.bare_head) + tail
            n = len(body)
            append(method)
            append(_pack_content_head(2, channel, 12 + len(props), CLASS_BASIC, 0, n))
            append(props)
            if n <= max_body:
                append(_pack_body_head(0xCE, 3, channel, n))
                append(body)
                append(FRAME_END)
            else:
                append(FRAME_END)
                self._split_body(body, out)
            starts.append(start)
        # Which lines a message holds, for a nack of it (confirms.py splits the batch
        # at its first line); kept only when messages hold several lines.
        batch.message_starts = starts if len(starts) != len(lines) else None
        return len(starts)
