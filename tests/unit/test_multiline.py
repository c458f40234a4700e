"""Multiline events and include/exclude (pure logic: multiline.py, framing.py)."""

import dataclasses
import io

from hypothesis import given, settings, strategies as st

from tailrabbit.framing import Framer
from tailrabbit.line import Batch
from tailrabbit.multiline import EventJoiner, PythonStarts, java_starts
from tailrabbit.settings import InputSettings
from tailrabbit.spool.format import encode, read_batch

BASE = InputSettings(name="api", type="file", path="/l/a.log", queue="q")

PYTHON_LOG = b"""\
2026-11-27 10:00:00,001 INFO ready
2026-11-27 10:00:01,002 ERROR failed
Traceback (most recent call last):
  File "app.py", line 3, in handle
    int("x")
ValueError: invalid literal for int() with base 10: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "app.py", line 5, in handle
    raise KeyError("k") from None
KeyError: 'k'
2026-11-27 10:00:02,003 INFO next
"""

JAVA_LOG = b"""\
2026-11-27 10:00:00.001 ERROR [main] c.e.App - request failed
java.lang.IllegalStateException: boom
\tat com.example.App.run(App.java:10)
\tat com.example.App.main(App.java:5)
Caused by: java.io.IOException: disk full
\tat com.example.Store.write(Store.java:42)
\t... 2 more
\tSuppressed: java.lang.RuntimeException: close failed
\t\tat com.example.Store.close(Store.java:50)
2026-11-27 10:00:00.002 INFO [main] c.e.App - next
"""


def framer(clock=None, **keys):
    item = dataclasses.replace(BASE, **keys)
    return Framer(item, want_offsets=True, **({"clock": clock} if clock else {}))


def events_of(data, **keys):
    shaper = framer(**keys)
    first, last = shaper.feed(data), shaper.flush()
    return first.lines + last.lines, first.offsets + last.offsets


def test_the_python_preset_keeps_a_chained_traceback_in_one_event():
    events, offsets = events_of(PYTHON_LOG, multiline="python")
    lines = PYTHON_LOG.split(b"\n")
    assert events == [lines[0], b"\n".join(lines[1:13]), lines[13]]
    assert offsets == [0, len(lines[0]) + 1, PYTHON_LOG.index(b"2026-11-27 10:00:02")]


def test_the_java_preset_keeps_caused_by_and_more_in_one_event():
    events, _ = events_of(JAVA_LOG, multiline="java")
    lines = JAVA_LOG.split(b"\n")
    assert events == [b"\n".join(lines[:9]), lines[9]]


def test_a_start_regex_joins_everything_until_the_next_start():
    data = b"2026-01-01 a\n  more\n\nplain\n2026-01-02 b\n"
    events, offsets = events_of(data, multiline_start=r"\d{4}-\d{2}-\d{2}")
    assert events == [b"2026-01-01 a\n  more\n\nplain", b"2026-01-02 b"]
    assert offsets == [0, data.index(b"2026-01-02")]


def test_the_checkpoint_bound_stops_at_the_first_byte_of_the_event_held():
    shaper = framer(multiline_start="S")
    out = shaper.feed(b"S one\n cont\nS two\n cont\n")
    assert out.lines == [b"S one\n cont"]
    assert out.end_offset == len(b"S one\n cont\n")           # not past "S two"
    assert shaper.flush().end_offset == len(b"S one\n cont\nS two\n cont\n")


def test_an_event_held_is_published_after_the_timeout_and_not_before():
    now = [100.0]
    shaper = framer(clock=lambda: now[0], multiline_start="S", multiline_timeout=1.0)
    assert shaper.feed(b"S one\n cont\n").lines == []
    assert shaper.deadline() == 101.0
    assert shaper.expire(100.5) is None
    out = shaper.expire(101.0)
    assert out.lines == [b"S one\n cont"] and out.end_offset == 12
    assert shaper.deadline() is None


def test_long_events_are_cut_at_line_boundaries_every_piece_but_the_last_flagged():
    events = [b"S"] + [b"c%d" % i for i in range(7)]
    shaper = framer(multiline_start="S", multiline_max_lines=3)
    out = shaper.feed(b"\n".join(events) + b"\n")
    last = shaper.flush()
    assert out.lines + last.lines == [b"S\nc0\nc1", b"c2\nc3\nc4", b"c5\nc6"]
    assert out.truncated == {0, 1} and last.truncated is None
    shaper = framer(multiline_start="S", max_line_bytes=10)
    out = shaper.feed(b"S 1234\nabcd\nefgh\n")
    assert out.lines + shaper.flush().lines == [b"S 1234", b"abcd\nefgh"]
    assert out.truncated == {0}


def test_include_and_exclude_match_bytes_anywhere_and_count_what_they_drop():
    data = b"GET /healthz 200\nGET /api 200\nPOST /api 500\n\xff GET /healthz\n"
    out = framer(exclude=r"GET /healthz").feed(data)
    assert out.lines == [b"GET /api 200", b"POST /api 500"]
    assert (out.read, out.filtered) == (4, 2) and out.offsets == [17, 30]
    assert out.end_offset == len(data)              # filtered lines count as done
    out = framer(include=r" 5\d\d$", exclude="POST /x").feed(data)
    assert out.lines == [b"POST /api 500"] and out.filtered == 3


def test_filters_see_whole_events():
    out = framer(multiline="python", include="Traceback").feed(PYTHON_LOG + b"2026 x\n")
    assert len(out.lines) == 1 and out.lines[0].startswith(b"2026-11-27 10:00:01,002 ERROR")


def test_python_starts_a_new_record_after_the_exception_line():
    starts = PythonStarts()
    flags = [starts(line) for line in [b"rec", b"Traceback (most recent call last):",
                                       b'  File "a"', b"ValueError: x", b"rec2",
                                       b"ValueError: not after a traceback"]]
    assert flags == [True, False, False, False, True, True]
    assert not java_starts(b"com.example.FooException: x") and java_starts(b"2026 INFO x")


def test_a_spool_batch_of_events_reads_back_exactly():
    batch = Batch("api", [b"one", b"two\n  more\n", b"three"], truncated={1}, timestamp=7)
    data = encode(batch) + encode(Batch("api", [b"plain"], timestamp=8))
    handle = io.BytesIO(data)
    first, position = read_batch(handle, 0, len(data), "api")
    assert first.lines == batch.lines and first.truncated == {1}
    assert read_batch(handle, position, len(data), "api")[0].lines == [b"plain"]


def test_a_joiner_given_no_start_line_holds_one_event():
    joiner = EventJoiner(lambda line: False, 500, 1 << 20)
    assert joiner.feed([b"a", b"b"]) == ([], None, None)
    assert joiner.flush() == ([b"a\nb"], None, None)


stream_lines = st.lists(st.one_of(
    st.builds(lambda s: b"S" + s, st.binary(max_size=12).map(lambda b: b.replace(b"\n", b""))),
    st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"").lstrip(b"S"))),
    min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(lines=stream_lines, cuts=st.lists(st.integers(min_value=0, max_value=2000),
                                         max_size=8), max_lines=st.integers(2, 9))
def test_joining_the_events_gives_back_the_input_whatever_the_reads(lines, cuts, max_lines):
    # the first line starts an event (blank lines before any event are not published)
    lines[0] = b"S" + lines[0]
    data = b"\n".join(lines) + b"\n"
    shaper = framer(multiline_start="S", multiline_max_lines=max_lines)
    events, offsets, ends = [], [], []
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for start, end in zip(points, points[1:]):
        out = shaper.feed(data[start:end])
        events += out.lines
        offsets += out.offsets
        ends.append(out.end_offset)
    out = shaper.flush()
    events += out.lines
    offsets += out.offsets
    assert b"\n".join(events) + b"\n" == data
    assert all(data[offset:offset + len(event)] == event
               for event, offset in zip(events, offsets))
    assert all(len(event.split(b"\n")) <= max_lines for event in events)
    # a checkpoint bound is always the first byte of an event, or the end of what was read
    starts = set(offsets) | {len(data)}
    assert all(end in starts for end in ends)
