"""A broker that takes the AMQP handshake and then answers nothing more: Session.open must
give up within its timeout, not wait forever.

Until the session's reader greenlet runs (after `open`), nothing watches heartbeats, and
py-amqp sends none while it waits for a reply. Before the fix, connection.channel() (the
declare channel's channel.open) and the declare channel's channel.close waited with no
timeout: one stalled answer (a hung broker node, a black-holed connection that still
looks open) kept the publisher in Session.open for good; no event, no reconnect, nothing
published. The proxy here forwards until the broker's reply named by `stall_after` has
passed, then holds both directions of that connection open and silent.
"""

import select
import struct
import time

import pytest

from faults.proxy import FaultProxy, _close
from helpers import BROKER, base_config, wait_for

FRAME_HEADER = struct.Struct(">BHI")
CONNECTION_OPEN_OK = (10, 41)    # after it, tailrabbit opens its declare channel
QUEUE_DECLARE_OK = (50, 11)      # after it (one input, no exchange), it closes that channel
OPEN_TIMEOUT = 2 + 5             # loop.py: connect_timeout (base_config: 2) + 5


class StallAfterProxy(FaultProxy):
    """Forwards both ways; once the broker sent the method `stall_after` (class, method)
    on a connection, nothing more passes on that connection, which stays open. With
    `stall_after` None, a plain forwarding proxy."""

    stall_after = None

    def _pump(self, pair):
        client, upstream = pair
        parsed = b""            # broker bytes not yet cut into frames
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        upstream.sendall(data)
                        continue
                    parsed += data
                    passed, parsed, stalled = self._cut(parsed)
                    client.sendall(passed)
                    if stalled:
                        while not self._closed:         # open and silent
                            time.sleep(0.05)
                        return
        except (OSError, ValueError):
            return
        finally:
            _close(client)
            _close(upstream)

    def _cut(self, data):
        """(bytes to pass, bytes kept for the next read, stall now?)."""
        position = 0
        while len(data) - position >= FRAME_HEADER.size:
            kind, _channel, size = FRAME_HEADER.unpack_from(data, position)
            end = position + FRAME_HEADER.size + size + 1
            if end > len(data):
                break
            method = struct.unpack_from(">HH", data, position + FRAME_HEADER.size) \
                if kind == 1 else None
            position = end
            if self.stall_after is not None and method == self.stall_after:
                return data[:position], b"", True
        return data[:position], data[position:], False


@pytest.fixture
def stalling_proxy():
    host, port = BROKER.rsplit(":", 1)
    proxy = StallAfterProxy(host, int(port))
    yield proxy
    proxy.close()


@pytest.mark.parametrize("stall_after", [CONNECTION_OPEN_OK, QUEUE_DECLARE_OK],
                         ids=["channel.open", "declare channel.close"])
def test_a_broker_silent_after_the_handshake_is_given_up(
        broker, state_dir, queue_name, stalling_proxy, tailrabbit_factory, tmp_path,
        stall_after):
    stalling_proxy.stall_after = stall_after
    log_path = str(tmp_path / "api.log")
    lines = [b"line %03d" % i for i in range(20)]
    with open(log_path, "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))
    config = base_config(state_dir, broker=stalling_proxy.address)
    config["input:api"] = {"type": "file", "path": log_path, "queue": queue_name,
                           "start_at": "beginning"}
    proc = tailrabbit_factory(config)
    wait_for(lambda: stalling_proxy.connections, message="a connection to the proxy")
    started = time.monotonic()
    # Without a timeout on that step, no event ever comes: the publisher waits for good.
    message = proc.wait_for_event("connect_failed", timeout=OPEN_TIMEOUT + 15)
    took = time.monotonic() - started
    assert "timed out" in message, proc.log()
    assert took < OPEN_TIMEOUT + 10, (took, proc.log())
    stalling_proxy.stall_after = None           # the broker answers again
    proc.wait_for_event("connected", timeout=60)
    broker.wait_depth(queue_name, len(lines), timeout=30)
    assert proc.stop() == 0, proc.log()
    assert [m.body for m in broker.consume_all(queue_name)] == lines
    print(f"stalled after {stall_after}: given up after {took:.1f} s")
