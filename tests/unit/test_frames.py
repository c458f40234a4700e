"""The hand-built frames decode, with py-amqp's own decoder, to what we meant."""

import struct

from amqp.basic_message import Message
from amqp.serialization import loads

from tailrabbit.settings import InputSettings
from tailrabbit.line import Batch
from tailrabbit.marks import FilePosition
from tailrabbit.publisher.frames import RouteEncoder


def split_frames(data):
    frames = []
    while data:
        kind, channel, size = struct.unpack(">BHI", data[:7])
        assert data[7 + size] == 0xCE
        frames.append((kind, channel, data[7:7 + size]))
        data = data[8 + size:]
    return frames


def decode_header(payload):
    class_id, weight, body_size = struct.unpack(">HHQ", payload[:12])
    message = Message()
    message._load_properties(class_id, payload, 12)
    return body_size, message.properties


def test_file_line_frames_round_trip_through_py_amqp():
    item = InputSettings(name="api", type="file", path="/var/log/api.log", queue="q",
                         routing_key="rk", exchange="ex", delivery_mode=1)
    encoder = RouteEncoder(3, 23, item, hostname="web1")     # bodies of 15 bytes at most
    out = []
    encoder.encode(Batch("api", [b"short", b"x" * 30], offsets=[0, 6], truncated={1},
                         timestamp=1700000000), out)
    frames = split_frames(b"".join(out))
    assert [f[0] for f in frames] == [1, 2, 3, 1, 2, 3, 3]
    assert all(f[1] == 3 for f in frames)
    args, _ = loads("ssb", frames[0][2], 6)        # after class, method, reserved short
    assert args == ["ex", "rk", True]              # mandatory: unroutable lines come back
    size, props = decode_header(frames[1][2])
    assert size == 5 and frames[2][2] == b"short"
    assert props == {"content_type": "text/plain", "delivery_mode": 1,
                     "timestamp": 1700000000, "app_id": "tailrabbit",
                     "application_headers": {"input": "api", "host": "web1",
                                             "path": "/var/log/api.log", "offset": 0}}
    size, props = decode_header(frames[4][2])
    assert size == 30 and frames[5][2] + frames[6][2] == b"x" * 30
    assert props["application_headers"]["truncated"] is True
    assert props["application_headers"]["offset"] == 6


def test_fast_paths_encode_the_same_properties_as_the_general_one():
    item = InputSettings(name="api", type="file", path="/l", queue="q", routing_key="q")
    encoder = RouteEncoder(1, 131072, item, hostname="h")
    lines, offsets = [b"a", b"bb", b"ccc"], [10, 12, 15]
    fast, slow = [], []
    encoder.encode(Batch("api", lines, offsets=offsets, timestamp=5), fast)
    encoder._encode_each(Batch("api", lines, offsets=offsets, truncated=set(), timestamp=5),
                         slow)
    fast_frames, slow_frames = split_frames(b"".join(fast)), split_frames(b"".join(slow))
    assert fast_frames == slow_frames
    headers = [decode_header(f[2])[1]["application_headers"]["offset"]
               for f in fast_frames if f[0] == 2]
    assert headers == offsets
    stdin = InputSettings(name="in", type="stdin", path=None, queue="q", routing_key="q")
    encoder = RouteEncoder(1, 131072, stdin, hostname="h")
    fast, slow = [], []
    encoder.encode(Batch("in", lines, timestamp=5), fast)
    encoder._encode_each(Batch("in", lines, truncated=set(), timestamp=5), slow)
    assert split_frames(b"".join(fast)) == split_frames(b"".join(slow))


class _Record:
    """A checkpoint record's stand-in: file batches name their file through it."""
    generation = 0

    def __init__(self, path):
        self.path = path


def _paths_of(out):
    return [decode_header(f[2])[1]["application_headers"]["path"]
            for f in split_frames(b"".join(out)) if f[0] == 2]


def test_a_glob_input_sends_the_path_of_each_file_not_the_pattern():
    item = InputSettings(name="api", type="file", path="/var/log/api/*.log", queue="q",
                         routing_key="q")
    encoder = RouteEncoder(1, 131072, item, hostname="h")
    out = []
    for path in ("/var/log/api/a.log", "/var/log/api/b.log", "/var/log/api/a.log"):
        encoder.encode(Batch("api", [b"l1", b"l2"], offsets=[0, 3],
                             source=FilePosition(_Record(path)), end_offset=6), out)
    encoder.encode(Batch("api", [b"t"], offsets=[9], truncated={0},
                         source=FilePosition(_Record("/var/log/api/c.log"))), out)
    assert _paths_of(out) == ["/var/log/api/a.log"] * 2 + ["/var/log/api/b.log"] * 2 + [
        "/var/log/api/a.log"] * 2 + ["/var/log/api/c.log"]


def test_the_path_is_taken_when_the_batch_is_made_and_odd_names_do_not_crash():
    record = _Record("/var/log/caf\udce9.log")          # a Latin-1 name: not UTF-8
    batch = Batch("api", [b"l"], offsets=[0], source=FilePosition(record))
    record.path = "/var/log/renamed.log"                 # later renames do not rewrite it
    item = InputSettings(name="api", type="file", path="/var/log/*.log", queue="q",
                         routing_key="q")
    out = []
    RouteEncoder(1, 131072, item, hostname="h").encode(batch, out)
    raw = b"".join(out)
    assert b"/var/log/caf\xe9.log" in raw and b"renamed" not in raw


def test_the_per_path_cache_is_bounded(monkeypatch):
    from tailrabbit.publisher import frames
    monkeypatch.setattr(frames, "PATH_CACHE", 8)
    item = InputSettings(name="api", type="file", path="/l/*", queue="q", routing_key="q")
    encoder = RouteEncoder(1, 131072, item, hostname="h")
    out = []
    for index in range(50):
        encoder.encode(Batch("api", [b"x"], offsets=[0], source=FilePosition(_Record(f"/l/{index}"))),
                       out)
    assert len(encoder._path_fields) <= 8 and len(encoder._offset_heads) <= 8
    assert _paths_of(out) == [f"/l/{index}" for index in range(50)]


# ---- headers, batches, gzip (batchframes.py) -------------------------------------------

import gzip  # noqa: E402
import dataclasses  # noqa: E402

from tailrabbit.publisher.batchframes import BatchEncoder, make_encoder  # noqa: E402


def _messages(out):
    """[(properties, body)] of every message in the frames."""
    messages, frames = [], split_frames(b"".join(out))
    for kind, _, payload in frames:
        if kind == 1:
            messages.append([None, b""])
        elif kind == 2:
            messages[-1][0] = decode_header(payload)[1]
        else:
            messages[-1][1] += payload
    return [tuple(m) for m in messages]


def _file_input(**extra):
    return InputSettings(name="api", type="file", path="/l/a.log", queue="q",
                         routing_key="q", **extra)


def test_default_settings_keep_the_per_line_encoder_and_its_exact_bytes():
    item = _file_input()
    encoder = make_encoder(1, 131072, item, hostname="h")
    assert type(encoder) is RouteEncoder
    out = []
    assert encoder.encode(Batch("api", [b"a", b"bb"], offsets=[0, 2], timestamp=5), out) == 2
    # the seed of these bytes: one message per line, headers input, host, path, offset
    assert [m[1] for m in _messages(out)] == [b"a", b"bb"]
    assert _messages(out)[1][0]["application_headers"] == {
        "input": "api", "host": "h", "path": "/l/a.log", "offset": 2}


def test_batches_hold_up_to_n_lines_of_one_batch_with_lines_and_first_offset():
    item = _file_input(batch_lines=3)
    encoder = make_encoder(1, 131072, item, hostname="h")
    lines = [b"l%d" % i for i in range(7)]
    offsets = [i * 3 for i in range(7)]
    out = []
    assert encoder.encode(Batch("api", lines, offsets=offsets, timestamp=5), out) == 3
    messages = _messages(out)
    assert [m[1] for m in messages] == [b"l0\nl1\nl2\n", b"l3\nl4\nl5\n", b"l6\n"]
    assert [(m[0]["application_headers"]["lines"], m[0]["application_headers"]["offset"])
            for m in messages] == [(3, 0), (3, 9), (1, 18)]
    assert "content_encoding" not in messages[0][0]
    assert b"".join(m[1] for m in messages).split(b"\n")[:-1] == lines


def test_batch_bytes_bounds_a_body_and_never_splits_a_line():
    item = _file_input(batch_lines=100, batch_bytes=10)
    encoder = make_encoder(1, 23, item, hostname="h")          # body frames of 15 bytes
    lines = [b"aaaa", b"bbbb", b"c" * 30, b"dd", b"ee", b"ff", b"g"]
    out = []
    count = encoder.encode(Batch("api", lines, offsets=list(range(7)), timestamp=5), out)
    bodies = [m[1] for m in _messages(out)]
    assert count == len(bodies) == 4
    assert bodies == [b"aaaa\nbbbb\n", b"c" * 30 + b"\n", b"dd\nee\nff\n", b"g\n"]


def test_truncated_lines_of_a_batch_are_named_by_index_in_the_message():
    item = _file_input(batch_lines=2)
    out = []
    make_encoder(1, 131072, item, hostname="h").encode(
        Batch("api", [b"a", b"b", b"c", b"d"], offsets=[0, 2, 4, 6], truncated={1, 2},
              timestamp=5), out)
    headers = [m[0]["application_headers"] for m in _messages(out)]
    assert [h.get("truncated") for h in headers] == [[1], [0]]


def test_gzip_round_trips_byte_exact_with_content_encoding():
    lines = [bytes(range(256)) * 3, b"\xff\xfe not utf-8 \r \t ", b"x" * 70000]
    for batch_lines, expected in ((1, lines), (50, [b"\n".join(lines) + b"\n"])):
        item = _file_input(batch_lines=batch_lines, compress="gzip")
        encoder = make_encoder(1, 4096, item, hostname="h")
        assert isinstance(encoder, BatchEncoder)
        out = []
        encoder.encode(Batch("api", lines, offsets=[0, 1, 2], truncated={2}, timestamp=5),
                       out)
        messages = _messages(out)
        assert [gzip.decompress(m[1]) for m in messages] == expected
        assert {m[0]["content_encoding"] for m in messages} == {"gzip"}
        assert messages[-1][0]["application_headers"]["truncated"] in (True, [2])


def test_headers_choose_the_metadata_and_empty_sends_no_table():
    lines = [b"a", b"b"]
    for headers, batch_lines, expected in (
            (("input",), 1, {"input": "api"}),
            (("path", "offset"), 1, {"path": "/l/a.log", "offset": 0}),
            (("host",), 5, {"host": "h", "lines": 2})):
        out = []
        make_encoder(1, 131072, _file_input(headers=headers, batch_lines=batch_lines),
                     hostname="h").encode(Batch("api", lines, offsets=[0, 2], timestamp=5),
                                          out)
        assert _messages(out)[0][0]["application_headers"] == expected
    for batch_lines in (1, 5):
        out = []
        make_encoder(1, 131072, _file_input(headers=(), batch_lines=batch_lines),
                     hostname="h").encode(Batch("api", lines, offsets=[0, 2], timestamp=5),
                                          out)
        for props, _ in _messages(out):
            assert "application_headers" not in props
            assert props["delivery_mode"] == 2 and props["timestamp"] == 5
    out = []           # a cut line still says so, even with no metadata
    make_encoder(1, 131072, _file_input(headers=()), hostname="h").encode(
        Batch("api", lines, offsets=[0, 2], truncated={0}, timestamp=5), out)
    assert [m[0].get("application_headers") for m in _messages(out)] == [
        {"truncated": True}, None]


def test_per_line_stdin_with_no_headers_is_the_bare_message():
    item = InputSettings(name="in", type="stdin", path=None, queue="q", routing_key="q",
                         headers=())
    out = []
    make_encoder(1, 131072, item).encode(Batch("in", [b"x"], timestamp=5), out)
    frames = split_frames(b"".join(out))
    assert frames[1][2][12:14] == struct.pack(">H", 0x9048)   # no headers flag
    assert dataclasses.replace(item, headers=("input",)).headers == ("input",)


def _mandatory_flags(out):
    """The `mandatory` bit of every basic.publish method frame in `out`."""
    flags = []
    for kind, _, payload in split_frames(b"".join(out)):
        if kind == 1:
            exchange_len = payload[6]
            key_len = payload[7 + exchange_len]
            flags.append(payload[8 + exchange_len + key_len] & 1)
    return flags


def test_mandatory_only_with_confirms():
    """Without confirms a returned line is never published again, and `mandatory` costs
    the broker 2-5 us a message: at-most-once publishes go without it."""
    for settings in (_file_input(), _file_input(batch_lines=10)):
        batch = Batch("api", [b"a", b"bb"], offsets=[0, 2], timestamp=5)
        for mandatory in (True, False):
            out = []
            make_encoder(1, 131072, settings, hostname="h",
                         mandatory=mandatory).encode(batch, out)
            assert set(_mandatory_flags(out)) == {int(mandatory)}
