"""A glob file input's lines that a stop spooled (their rotated file was deleted while the
broker was away: logrotate `compress` without `delaycompress`) replay at the next start
with the `path` and `offset` headers the same lines get when published live, so consumers
that dedupe on (path, offset) see the same keys. Before, they carried the input's `path`
(the glob pattern) and no `offset`.

The live reference is a first run on the direct broker, with a state_dir and a queue of
its own, reading the same file at the same path from the beginning. The file holds a
blank line and a filtered line (offsets that are not contiguous) and, with
`batch_lines = 3`, messages of several lines.
"""

import gzip
import os
import shutil

import pytest

from file_helpers import append, file_input, wait_read, wait_saved
from helpers import unique, wait_for

LINES = [b"GET /a 200", b"GET /b 404", b"debug: filtered", b"", b"GET /c 500",
         b"GET /d 200", b"GET /e 301"]
PUBLISHED = [line for line in LINES if line and not line.startswith(b"debug")]


def headers_of(messages):
    """(body, application headers) of each message."""
    return [(m.body, m.properties.get("application_headers")) for m in messages]


@pytest.mark.parametrize("batch_lines", [1, 3])
def test_replayed_lines_of_a_deleted_rotated_file_carry_their_live_path_and_offsets(
        batch_lines, broker, config, proxied_config, proxy, queue_name, tailrabbit_factory,
        tmp_path, state_dir):
    logs = tmp_path / "logs"
    logs.mkdir()
    glob, path = str(logs / "*.log"), str(logs / "api.log")
    options = {"exclude": "^debug", "batch_lines": batch_lines}
    append(path, b"".join(line + b"\n" for line in LINES))

    # the live reference: the same file at the same path, another state_dir and queue
    live_queue = unique("tr-live")
    broker.queues.append(live_queue)
    live_config = file_input(dict(config), live_queue, glob, **options)
    live_config["tailrabbit"] = dict(config["tailrabbit"],
                                     state_dir=str(tmp_path / "live-state"))
    os.mkdir(tmp_path / "live-state")
    live = tailrabbit_factory(live_config, name="live")
    wait_for(lambda: broker.depth(live_queue) == -(-len(PUBLISHED) // batch_lines),
             message="the live run published every line")
    assert live.stop() == 0, live.log()
    expected = headers_of(broker.consume_all(live_queue))
    assert [h["path"] for _, h in expected] == [path] * len(expected)

    # the broker away: read, rotated, compressed (deleted), then a stop spools them
    proxied_config["tailrabbit"]["shutdown_timeout"] = 1
    proxy.set_mode("refuse")
    first = tailrabbit_factory(file_input(dict(proxied_config), queue_name, glob,
                                          **options), name="first")
    wait_read(first, len(LINES) - 1)                 # the blank line is not read as one
    os.rename(path, path + ".1")                     # create: api.log.1 is no match
    append(path, b"")
    with open(path + ".1", "rb") as source, gzip.open(path + ".1.gz", "wb") as target:
        shutil.copyfileobj(source, target)           # compress
    os.unlink(path + ".1")
    append(path, b"after 1\n")
    first.wait_for_event("file_rotated")
    wait_read(first, len(LINES))
    assert first.stop() == 0, first.log()
    spooled = first.logged("unconfirmed_spooled", "input api")
    assert spooled and f"{len(PUBLISHED)} lines" in spooled[0], first.log()

    # the broker back: the spool first, with the live headers, then the new file
    proxy.set_mode("pass")
    second = tailrabbit_factory(file_input(dict(proxied_config), queue_name, glob,
                                           **options), name="second")
    wait_saved(state_dir, path, os.path.getsize(path))
    assert second.stop() == 0, second.log()
    got = headers_of(broker.consume_all(queue_name))
    assert got[:len(expected)] == expected, second.log()
    assert got[len(expected):] == [(b"after 1\n" if batch_lines > 1 else b"after 1",
                                    dict(expected[0][1], path=path, offset=0,
                                         **({"lines": 1} if batch_lines > 1 else {})))]
