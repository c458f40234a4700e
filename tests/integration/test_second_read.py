"""Second reading of 700c294: a nack inside a batch of BATCHED messages (batch_lines > 1)
is not split, so the livelock it fixed for one line per message is still there."""

import json

import pytest

from helpers import wait_for


@pytest.mark.xfail(strict=True, reason="known: a nack inside a batch of batched messages (batch_lines > 1) or a spool record is not split: the head is published again at each retry")
def test_a_batched_input_into_a_full_reject_publish_queue_drained_between_retries_progresses(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """As tests/faults/test_review_pipes.py's reject-publish reproducer, with a file input
    and batch_lines = 10: 3,000 lines read in one read are one Batch of 300 messages. The
    queue has room for 50 messages; message 51 is nacked. take_from splits a batch only
    when it is one message per line, so the whole Batch is set aside, the late acks of
    messages 1-50 confirm nothing, and every retry publishes lines 0-499 again."""
    arguments = {"x-max-length": 50, "x-overflow": "reject-publish"}
    broker.declare(queue_name, durable=True, auto_delete=False, arguments=arguments)
    path = str(tmp_path / "api.log")
    expected = [b"line %04d" % i for i in range(3000)]
    with open(path, "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in expected))
    config["input:api"] = {"type": "file", "path": path, "queue": queue_name,
                           "start_at": "beginning", "batch_lines": 10,
                           "arguments": json.dumps(arguments)}
    proc = tailrabbit_factory(config)
    lines = []
    for round_ in range(1, 6):              # retries after 0.25, 0.5, 1, 2, 4 s
        wait_for(lambda: len(proc.logged("input_parked", "input api ")) >= round_,
                 timeout=30, message=f"park {round_}")
        broker.wait_depth(queue_name, 50)
        for message in broker.consume_all(queue_name, settle=0.1):
            lines.extend(message.body.split(b"\n")[:-1])
    distinct = len(set(lines))
    assert proc.stop() == 0, proc.log()
    assert distinct >= 1500, (
        f"after 5 rounds of 50 free places (500 lines each), {len(lines)} lines consumed "
        f"but only {distinct} distinct ({len(lines) - distinct} repeats)")
