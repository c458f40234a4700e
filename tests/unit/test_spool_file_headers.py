"""A file's lines spooled at a stop replay with the `path` and `offset` headers they had
live (spool/origin.py: the `p=` and `o=` header fields); a pipe's spool records are the
bytes every earlier version wrote; old spools read as before; a damaged origin field is
Damaged, never a crash."""

import io
import os

import pytest
from hypothesis import given, settings, strategies as st

from tailrabbit.buffer import LineBuffer
from tailrabbit.framing import Framer
from tailrabbit.line import Batch
from tailrabbit.marks import FilePosition, PartOfRecord, SpoolPosition
from tailrabbit.publisher.batchframes import make_encoder
from tailrabbit.settings import InputSettings
from tailrabbit.spool import Spool
from tailrabbit.spool.format import Damaged, encode, read_batch, resync
from tailrabbit.stats import InputStats
from unit.test_spool import replay_all

GLOB = "/var/log/api/*.log"
MATCH = "/var/log/api/a.log"


class _Record:
    """What FilePosition reads of a checkpoints.Record."""
    generation = 0

    def __init__(self, path):
        self.path = path
        self.confirmed = []

    def confirm(self, generation, end_offset):
        self.confirmed.append(end_offset)


def file_batch(lines, offsets, path=MATCH, truncated=None, timestamp=1700000000):
    return Batch("api", lines, offsets, truncated, FilePosition(_Record(path)),
                 end_offset=offsets[-1] + len(lines[-1]) + 1, timestamp=timestamp,
                 path=path)


def read_all(data, name="api"):
    handle, position, batches = io.BytesIO(data), 0, []
    while position < len(data):
        batch, position = read_batch(handle, position, len(data), name)
        batches.append(batch)
    return batches


def make_spool(tmp_path, name="api"):
    os.makedirs(tmp_path, exist_ok=True)
    buffer, stats = LineBuffer(1000), InputStats()
    return Spool(str(tmp_path), name, 1 << 20, buffer, stats), buffer


def segments(spool):
    return b"".join(open(os.path.join(spool.directory, n), "rb").read()
                    for n in sorted(os.listdir(spool.directory)) if n.endswith(".seg"))


# ---- pipes: byte-identical records; old spools read unchanged ---------------------------

PIPE_BATCHES = [
    (Batch("web", [b"a", b"b\r", b"\xff"], truncated={1}, timestamp=7),
     b"3 7 1\na\nb\r\n\xff\n"),
    (Batch("web", [b"c"], timestamp=8), b"1 8 \nc\n"),
    (Batch("web", [b"one", b"two\n  more", b"three"], truncated={1, 2}, timestamp=9),
     b"4 9 1,2 1,2,1\none\ntwo\n  more\nthree\n"),
]


@pytest.mark.parametrize("batch, expected", PIPE_BATCHES)
def test_a_pipes_record_is_the_bytes_every_earlier_version_wrote(batch, expected):
    assert encode(batch) == expected


def test_a_pipes_spool_segments_are_byte_identical_by_append_and_by_a_stops_prepend(
        tmp_path):
    expected = b"".join(data for _, data in PIPE_BATCHES)
    appended, _ = make_spool(tmp_path / "a", "web")
    for batch, _ in PIPE_BATCHES:
        appended.append(batch)
    appended.close()
    assert segments(appended) == expected
    prepended, _ = make_spool(tmp_path / "p", "web")
    prepended.prepend([batch for batch, _ in PIPE_BATCHES])
    prepended.close()
    assert segments(prepended) == expected


def test_old_spools_of_three_and_four_fields_replay_unchanged():
    old = b"2 7 1\na\nb\n" + b"3 8 0 2,1\nx\n y\nz\n"
    first, second = read_all(old)
    assert (first.lines, first.truncated, first.timestamp) == ([b"a", b"b"], {1}, 7)
    assert (second.lines, second.truncated) == ([b"x\n y", b"z"], {0})
    for batch in (first, second):
        assert batch.path is None and batch.offsets is None


# ---- files: the path and offsets come back ----------------------------------------------

def test_a_file_batch_keeps_its_path_and_offsets_and_costs_one_field_each():
    lines = [b"GET /a 200", b"GET /b 404", b"GET /c 200"]
    batch = file_batch(lines, [1000, 1011, 1022])
    data = encode(batch)
    header = data.split(b"\n", 1)[0]
    assert header == b"3 1700000000  p=" + MATCH.encode().hex().encode() + b" o=1000"
    [back] = read_all(data)
    assert (back.lines, back.offsets, back.path) == (lines, [1000, 1011, 1022], MATCH)


def test_gaps_of_skipped_lines_are_written_where_they_are_and_read_back():
    lines = [b"a", b"bb", b"ccc", b"d"]
    offsets = [0, 3, 10, 14]           # a blank line before bb, 4 filtered bytes before ccc
    data = encode(file_batch(lines, offsets))
    assert b" o=0,1+1,2+4\n" in data
    assert read_all(data)[0].offsets == offsets


def test_an_offset_before_where_it_was_expected_is_kept_too():
    data = encode(file_batch([b"abc", b"d"], [50, 51]))       # never seen live: still exact
    assert b" o=50,1-3\n" in data and read_all(data)[0].offsets == [50, 51]


@pytest.mark.parametrize("path", [
    "/var/log/caf\udce9.log",                  # not UTF-8 (surrogateescape, as the header)
    "/var/log/a b\nc.log",                     # a space and a newline
    "/var/log/\u00e9t\u00e9.log",              # UTF-8
])
def test_any_path_but_nul_is_kept_exactly(path):
    data = encode(file_batch([b"x"], [5], path=path))
    assert data.count(b"\n") == 2 and data.split(b"\n", 1)[0].count(b" ") == 4
    assert read_all(data)[0].path == path


def test_a_path_that_cannot_be_written_is_left_out_never_raised():
    for path in ("/a\0b", "/bad\ud800"):
        data = encode(file_batch([b"x"], [5], path=path))
        assert b"p=" not in data
        assert (read_all(data)[0].path, read_all(data)[0].offsets) == (None, [5])


def test_offsets_that_could_not_be_read_back_are_left_out():
    for offsets in ([-1], [1 << 63], [0, 1]):              # the last: not one per line
        batch = Batch("api", [b"x"], offsets, timestamp=1, path=MATCH)
        assert b"o=" not in encode(batch) and read_all(encode(batch))[0].offsets is None


def file_settings(**extra):
    return InputSettings(name="api", type="file", path=GLOB, queue="q", routing_key="q",
                         **extra)


frame_settings = st.fixed_dictionaries({}, optional={
    "max_line_bytes": st.integers(3, 12),
    "exclude": st.just("^skip"),
    "multiline_start": st.just("^S"),
})
file_bytes = st.lists(st.sampled_from([b"", b"S", b"skip", b"line", b" more", b"x" * 20,
                                       b"\r", b"\xff"]), max_size=30) \
    .map(lambda parts: b"".join(p + b"\n" for p in parts))


@settings(max_examples=300, deadline=None)
@given(options=frame_settings, data=file_bytes, start=st.integers(0, 1 << 40),
       batch_lines=st.sampled_from([1, 3]))
def test_replayed_file_lines_publish_the_frames_live_ones_did(options, data, start,
                                                               batch_lines):
    """Lines framed as a file reader frames them (blank lines, filters, cut lines,
    multiline events), spooled and read back: the encoder's frames, headers included,
    are the live batch's byte for byte."""
    item = file_settings(batch_lines=batch_lines, **options)
    framed = Framer(item, start, want_offsets=True).feed(data)
    if not framed.lines:
        return
    live = file_batch(framed.lines, framed.offsets, truncated=framed.truncated)
    [back] = read_all(encode(live))
    assert (back.lines, back.offsets, back.path) == (live.lines, live.offsets, live.path)
    encoder = make_encoder(1, 131072, item, hostname="h")
    live_out, back_out = [], []
    encoder.encode(live, live_out)
    encoder.encode(back, back_out)
    assert b"".join(back_out) == b"".join(live_out)


# ---- the replay: the spool's mark, not the file's ---------------------------------------

def test_a_replayed_file_batch_carries_its_headers_and_confirms_the_spool(tmp_path):
    spool, buffer = make_spool(tmp_path)
    live = file_batch([b"l1", b"l2", b"l3"], [0, 3, 7])
    spool.prepend([live])
    [back] = replay_all(spool, buffer)
    assert (back.path, back.offsets) == (MATCH, [0, 3, 7])
    assert isinstance(back.source, SpoolPosition) and back.end_offset == len(encode(live))
    assert live.source.record.confirmed == []              # no file checkpoint moved
    spool.save_position()
    assert not spool.holds_lines() and not segments(spool)  # the spool is confirmed
    head, tail = back.part(0, 1), back.part(1, 3)        # a nack inside the record
    assert isinstance(head.source, PartOfRecord) and tail.source is back.source
    assert (head.path, head.offsets, tail.offsets) == (MATCH, [0], [3, 7])


def test_a_replayed_file_batch_spooled_again_at_a_stop_keeps_its_headers(tmp_path):
    spool, buffer = make_spool(tmp_path)
    spool.prepend([file_batch([b"l1", b"l2"], [10, 13])])
    [back] = replay_all(spool, buffer)
    spool.prepend([back])                                 # unconfirmed again at a stop
    spool.close()
    again, buffer = make_spool(tmp_path)
    [last] = replay_all(again, buffer)
    assert (last.lines, last.path, last.offsets) == ([b"l1", b"l2"], MATCH, [10, 13])


# ---- damage: Damaged, never a crash, never a huge allocation -----------------------------

HEX = MATCH.encode().hex().encode()
BAD_HEADERS = [
    b"1 7  p=" + HEX.upper(),                 # not canonical hex
    b"1 7  p=" + HEX[:-1],                    # odd length
    b"1 7  p=",                               # empty
    b"1 7  p=2f00",                           # a NUL
    b"1 7  p=zz",
    b"1 7  o=",
    b"1 7  o=-1",
    b"1 7  o=" + b"9" * 20,                   # more digits than a number has
    b"1 7  o=9223372036854775808",            # past the offset header's range
    b"2 7  o=0,0+1",                          # index 0 is the first offset
    b"2 7  o=0,2+1",                          # index past the lines
    b"3 7  o=0,2+1,1+1",                      # not increasing
    b"3 7  o=0,1+1,1+1",
    b"2 7  o=0,1+0",                          # a zero gap is no exception
    b"2 7  o=0,1*3",
    b"2 7  o=0,1+",
    b"2 7  o=0,,",
    b"1 7  o=0 p=" + HEX,                     # out of order
    b"1 7  p=" + HEX + b" p=" + HEX,          # twice
    b"1 7  p=" + HEX + b" o=0 o=0",
    b"1 7  x=1",                              # unknown
    b"1 7  p=" + HEX + b" o=0 1",
    b"1 7  1 p=" + HEX + b" o=0 x",           # 7 fields
    b"2 7  1,1 p=" + HEX + b" o=0,2+1",       # an index past the events (2 events: 0, 1)
]


@pytest.mark.parametrize("header", BAD_HEADERS)
def test_a_damaged_origin_field_is_damaged(header):
    count = int(header.split(b" ")[0])
    data = header + b"\n" + b"x\n" * count
    with pytest.raises(Damaged):
        read_batch(io.BytesIO(data), 0, len(data), "api")


def test_offsets_pushed_past_the_header_range_by_the_lines_are_damaged():
    for data in (b"2 7  o=9223372036854775800\n" + b"x" * 20 + b"\ny\n",
                 b"2 7  o=5,1-100\nx\ny\n"):                     # negative
        with pytest.raises(Damaged):
            read_batch(io.BytesIO(data), 0, len(data), "api")


def test_a_huge_index_or_gap_allocates_nothing():
    data = b"2 7  o=0,1+9999999999999999999\nx\ny\n"   # 1e19 bytes of gap: out of range
    with pytest.raises(Damaged):
        read_batch(io.BytesIO(data), 0, len(data), "api")
    data = b"9999999999999999999 7  o=0,9999999999999999998+1\nx\n"
    with pytest.raises(Damaged):                         # the count is checked first
        read_batch(io.BytesIO(data), 0, len(data), "api")


@settings(max_examples=500, deadline=None)
@given(cut=st.integers(0, 200), byte=st.integers(0, 255), insert=st.booleans())
def test_any_one_byte_of_damage_is_damaged_or_a_batch_never_a_crash(cut, byte, insert):
    data = encode(file_batch([b"a", b"bb", b"cc"], [0, 3, 9], path="/p/x y.log")) \
        + encode(Batch("api", [b"pipe"], timestamp=3))
    cut %= len(data)
    damaged = data[:cut] + bytes([byte]) + data[cut + (0 if insert else 1):]
    handle, position = io.BytesIO(damaged), 0
    while position < len(damaged):
        try:
            batch, position = read_batch(handle, position, len(damaged), "api")
        except Damaged:
            position = resync(handle, position, len(damaged))
            continue
        assert batch.offsets is None or len(batch.offsets) == len(batch.lines)
        assert all(0 <= o < 1 << 63 for o in batch.offsets or ())


def test_resync_finds_a_file_batch_whose_header_is_longer_than_a_line():
    long_path = "/var/log/" + "d" * 300 + "/a.log"           # a 600+ byte header
    good = b"".join(encode(file_batch([b"line %d" % i], [i * 7], path=long_path))
                    for i in range(6))
    damage = b"3 x \nrest of the damaged batch\n"
    data = damage + good
    handle = io.BytesIO(data)
    with pytest.raises(Damaged):
        read_batch(handle, 0, len(data), "api")
    assert resync(handle, 0, len(data)) == len(damage)
    assert [b.path for b in read_all(good)] == [long_path] * 6
