"""Which published lines the broker has confirmed, from pipelined basic.ack/nack.

Delivery tags are counted here (they start at 1 on every new channel), one per message:
a Batch of a batched input is fewer messages than lines, and the publisher says how many.
`outstanding` stays in lines (the confirm window and the stats are about lines). Acks may come with
`multiple` or one tag at a time, and across queues out of order; a batch is released only
when every tag up to its last one is acked, so releases happen in publish order and a file
checkpoint can never jump over an unconfirmed line.

A nack (a queue at its reject-publish limit nacks a line at once and acks the ones it
stored after their fsync; a consumer making room gets a later line stored) parks the
input: nothing more is published on its channel, and its tags stay tracked until every
one is acked or nacked (the retry, a planned reconnect, waits for that). Then only the
lines not acked go again; those stored after a refused one ride on it (Batch.carry),
released right after it, so no checkpoint passes it. Rejected: setting the lines from
the nacked one on aside at the nack (a later ack of one of them found nothing: a
duplicate of a confirmed line at every such retry).
"""

from collections import deque
from itertools import islice

UNDECIDED, ACKED, NACKED = 0, 1, 2


class ConfirmTracker:
    def __init__(self):
        self.next_tag = 1          # the tag the broker will give the next publish
        self.acked_upto = 0        # every tag <= this is acked
        self._acked_above = set()  # single acks beyond acked_upto
        self._in_flight = deque()  # (last_tag, batch, first_tag), in publish order
        self.outstanding = 0       # lines published and not yet released
        self.outstanding_bytes = 0  # their bytes: long lines must not pile up in memory
        # After a nack (rare): the fate of each tag from _base on (UNDECIDED, ACKED,
        # NACKED), how many are undecided, the lowest nacked, the tag below which a
        # multiple ack or nack decided all, and who takes the lines once all are decided.
        self._states = None
        self._base = self._swept = 0
        self.undecided = 0
        self.nacked_from = None
        self._on_settled = None

    def __len__(self):
        return len(self._in_flight)

    def add(self, batch, messages=None):
        """Register a batch about to be written; its messages take the next tags: one per
        line, or `messages` (what the encoder made of it: fewer with batch_lines > 1)."""
        first = self.next_tag
        self.next_tag += len(batch.lines) if messages is None else messages
        self._in_flight.append((self.next_tag - 1, batch, first))
        self.outstanding += len(batch.lines)
        self.outstanding_bytes += batch.nbytes
        if self._states is not None:            # not expected: a nack parks the input
            self._states.extend(bytes(self.next_tag - first))
            self.undecided += self.next_tag - first

    def ack(self, tag, multiple):
        """Record an ack; returns the batches now fully confirmed, in order."""
        if self._states is not None:
            return self._ack_after_nack(tag, multiple)
        if multiple:
            if tag > self.acked_upto:
                self.acked_upto = tag
                self._acked_above = {t for t in self._acked_above if t > tag}
        else:
            self._acked_above.add(tag)
        above = self._acked_above
        while self.acked_upto + 1 in above:
            self.acked_upto += 1
            above.discard(self.acked_upto)
        return self._release_acked()

    def _release_acked(self):
        released = []
        in_flight = self._in_flight
        while in_flight and in_flight[0][0] <= self.acked_upto:
            batch = in_flight.popleft()[1]
            self.outstanding -= len(batch.lines)
            self.outstanding_bytes -= batch.nbytes
            released.append(batch)
        return released

    def batches(self):
        return [item[1] for item in self._in_flight]

    def oldest_timestamp(self):
        """Read time of the oldest batch awaiting its confirm, or None (the lag metrics).
        Batches are released in publish order, so it is the first one."""
        return self._in_flight[0][1].timestamp if self._in_flight else None

    def take_acked_head(self):
        """The acked lines at the front of the oldest batch, split off it (a connection
        lost while a batch was acked in part): [head] to release, or []. Without this the
        whole batch went again, its confirmed lines too (up to a batch per input per
        loss). After a nack too: acked_upto never passes a tag not acked, and take_all
        would publish again acked lines that no line before them can carry."""
        if not self._in_flight:
            return []
        last, batch, first = self._in_flight[0]
        starts = self._lines_of(batch, first, last) if first <= self.acked_upto else None
        if starts is None:
            return []
        head, tail = _split(batch, starts, self.acked_upto - first + 1)
        self._in_flight[0] = (last, tail, self.acked_upto + 1)
        self.outstanding -= len(head.lines)
        self.outstanding_bytes -= head.nbytes
        return [head]

    # ---- after a nack ------------------------------------------------------------------

    def nack(self, tag, multiple, on_settled):
        """Record a nack: (released, held). The lines before the lowest nacked tag wait
        for their acks (released: those acked already); the batch holding it is split at
        its message's first line. `held`: the lines from it on, when this nack lowered
        it (else 0). Once every tag is acked or nacked, `on_settled` gets the lines to
        publish again (take_all)."""
        if self._states is None:
            self._base = self._swept = self.acked_upto + 1
            self._states = states = bytearray(self.next_tag - self._base)
            for acked in self._acked_above:
                if self._base <= acked < self.next_tag:
                    states[acked - self._base] = ACKED
            self._acked_above = set()
            self.undecided = states.count(UNDECIDED)
        self._on_settled = on_settled
        low, held = self._decide(tag, multiple, NACKED), 0
        if low is not None and (self.nacked_from is None or low < self.nacked_from):
            self.nacked_from = low
            held = self._split_at(low)
        released = self._release_acked()
        self._settle()
        return released, held

    def _ack_after_nack(self, tag, multiple):
        self._decide(tag, multiple, ACKED)
        states, base, upto = self._states, self._base, self.acked_upto + 1
        while upto - base < len(states) and states[upto - base] == ACKED:
            upto += 1                   # never past a nacked tag
        self.acked_upto = upto - 1
        released = self._release_acked()
        self._settle()
        return released

    def _decide(self, tag, multiple, fate):
        """Mark `tag` (and with `multiple` every undecided tag up to it) as `fate`; the
        lowest tag newly marked, or None. A multiple ack or nack covers only tags not
        decided yet: a nacked tag stays nacked under a later multiple ack."""
        states, base = self._states, self._base
        end = min(tag + 1, self.next_tag) - base
        if not multiple:
            index = tag - base
            if 0 <= index < end and states[index] == UNDECIDED:
                states[index] = fate
                self.undecided -= 1
                return tag
            return None
        start = self._swept - base
        if start >= end:
            return None
        self._swept = base + end
        region = states[start:end]
        first = region.find(UNDECIDED)
        if first < 0:
            return None
        self.undecided -= region.count(UNDECIDED)
        states[start:end] = region.replace(bytes((UNDECIDED,)), bytes((fate,)))
        return base + start + first

    def _acked(self, tag):
        if tag <= self.acked_upto:
            return True
        if self._states is None:
            return tag in self._acked_above
        index = tag - self._base
        return 0 <= index < len(self._states) and self._states[index] == ACKED

    def _lines_of(self, batch, first, last):
        """The index of the first line of each of the batch's messages, or None when
        unknown (a batch of several lines per message not encoded by batchframes)."""
        count = last - first + 1
        if count == len(batch.lines):
            return range(count)
        starts = batch.message_starts
        return starts if starts is not None and len(starts) == count else None

    def _split_at(self, tag):
        """Split the batch holding `tag` at its message's first line, so that the lines
        before can be released when acked; returns the lines from `tag` on."""
        entries = self._in_flight
        for index, (last, batch, first) in enumerate(entries):
            if last < tag:
                continue
            starts = self._lines_of(batch, first, last) if first < tag else None
            if starts is not None:
                head, tail = _split(batch, starts, tag - first)
                entries[index] = (tag - 1, head, first)
                entries.insert(index + 1, (last, tail, tag))
                index += 1
            return sum(len(item[1].lines) for item in islice(entries, index, None))
        return 0

    def _settle(self):
        if self.undecided == 0 and self._on_settled is not None:
            on_settled, self._on_settled = self._on_settled, None
            on_settled(self.take_all())

    def _runs(self, batch, first, last):
        """[start line, end line, acked] of each run of its messages acked or not."""
        starts, lines = self._lines_of(batch, first, last), len(batch.lines)
        if starts is None:
            acked = all(self._acked(tag) for tag in range(first, last + 1))
            return [[0, lines, acked]]
        runs = []
        for index, start in enumerate(starts):
            acked = self._acked(first + index)
            if runs and runs[-1][2] == acked:
                continue
            if runs:
                runs[-1][1] = start
            runs.append([start, lines, acked])
        return runs

    def take_all(self):
        """Every batch not yet confirmed, in publish order (to publish again). After a
        nack, or acks out of order (one input routed to two queues), only the lines not
        acked: the acked ones after a line not acked ride on it (Batch.carry); acked ones
        before any such line (a batch acked in part when the connection was lost, unless
        take_acked_head took them first) go again."""
        if self._states is None and not self._acked_above:
            batches = [item[1] for item in self._in_flight]
        else:
            batches = []
            for last, batch, first in self._in_flight:
                riders, batch.riders = batch.riders, None
                for start, end, acked in self._runs(batch, first, last):
                    part = batch.part(start, end)
                    if acked and batches:
                        batches[-1].carry([part])
                    else:
                        batches.append(part)
                if riders:
                    batches[-1].carry(riders)
        self._in_flight.clear()
        self.outstanding = self.outstanding_bytes = 0
        return batches


def _split(batch, starts, cut):
    """(head, tail) of `batch` at the first line of its message `cut` (`starts`: each
    message's first line); batched messages keep their grouping in both parts."""
    line = starts[cut]
    head, tail = batch.part(0, line), batch.part(line, len(batch.lines))
    if len(starts) != len(batch.lines):
        head.message_starts = list(starts[:cut])
        tail.message_starts = [start - line for start in starts[cut:]]
    return head, tail
