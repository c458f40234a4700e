"""The hand-built frames decode, with py-amqp's own decoder, to what we meant."""

import struct

from amqp.basic_message import Message
from amqp.serialization import loads

from tailrabbit.settings import InputSettings
from tailrabbit.line import Batch
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
                             source=(_Record(path), 0), end_offset=6), out)
    encoder.encode(Batch("api", [b"t"], offsets=[9], truncated={0},
                         source=(_Record("/var/log/api/c.log"), 0)), out)
    assert _paths_of(out) == ["/var/log/api/a.log"] * 2 + ["/var/log/api/b.log"] * 2 + [
        "/var/log/api/a.log"] * 2 + ["/var/log/api/c.log"]


def test_the_path_is_taken_when_the_batch_is_made_and_odd_names_do_not_crash():
    record = _Record("/var/log/caf\udce9.log")          # a Latin-1 name: not UTF-8
    batch = Batch("api", [b"l"], offsets=[0], source=(record, 0))
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
        encoder.encode(Batch("api", [b"x"], offsets=[0], source=(_Record(f"/l/{index}"), 0)),
                       out)
    assert len(encoder._path_fields) <= 8 and len(encoder._offset_heads) <= 8
    assert _paths_of(out) == [f"/l/{index}" for index in range(50)]
