"""Second reading of 700c294: a nack inside a batch of BATCHED messages (batch_lines > 1)
or inside a spool record was not split, so the livelock it fixed for one line per
message was still there: the same head was published at every retry."""

import json

from helpers import wait_for
from tailrabbit.buffer import LineBuffer
from tailrabbit.line import Batch
from tailrabbit.spool import Spool
from tailrabbit.stats import Stats


def test_a_batched_input_into_a_full_reject_publish_queue_drained_between_retries_progresses(
        broker, config, queue_name, tailrabbit_factory, tmp_path):
    """As tests/faults/test_review_pipes.py's reject-publish reproducer, with a file input
    and batch_lines = 10: 3,000 lines read in one read are one Batch of 300 messages. The
    queue has room for 50 messages; message 51 is nacked. The Batch is split at message
    51's first line: the late acks of messages 1-50 confirm lines 0-499, and the retry
    publishes lines 500 and on (before, the whole Batch was set aside and every retry
    published lines 0-499 again)."""
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


def test_a_spool_record_replayed_into_a_full_reject_publish_queue_progresses(
        broker, config, queue_name, state_dir, tailrabbit_factory, tmp_path):
    """A FIFO input's spool from an earlier run holds one record of 250 lines: replayed,
    one Batch. The queue has room for 50; line 51 is nacked. A spool record is confirmed
    whole, so it was never split: every retry published lines 1-50 again, forever. Split,
    its first parts move nothing and its last part moves the spool past it: each line
    arrives once and the spool is empty after the stop."""
    arguments = {"x-max-length": 50, "x-overflow": "reject-publish"}
    broker.declare(queue_name, durable=True, auto_delete=False, arguments=arguments)
    expected = [b"spooled %03d" % i for i in range(250)]
    earlier = Spool(state_dir, "api", 1 << 30, LineBuffer(10), Stats(["api"]).of("api"))
    earlier.append(Batch("api", expected))
    earlier.close()
    config["input:api"] = {"type": "fifo", "path": str(tmp_path / "api.fifo"),
                           "queue": queue_name, "arguments": json.dumps(arguments)}
    proc = tailrabbit_factory(config)
    lines = []
    for round_ in range(1, 6):              # retries after 0.25, 0.5, 1, 2 s
        if round_ < 5:
            wait_for(lambda: len(proc.logged("input_parked", "input api ")) >= round_,
                     timeout=30, message=f"park {round_}")
        broker.wait_depth(queue_name, 50)
        lines.extend(message.body for message in broker.consume_all(queue_name, settle=0.1))
    assert sorted(lines) == expected, (
        f"{len(lines)} lines consumed, {len(set(lines))} distinct, after 5 rounds of 50 "
        f"free places")
    assert proc.stop() == 0, proc.log()
    again = Spool(state_dir, "api", 1 << 30, LineBuffer(10), Stats(["api"]).of("api"))
    assert not again.holds_lines(), "the record's last part did not move the spool"
