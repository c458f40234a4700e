"""`confirm = False`: the broker's close-ok is the only proof it took every line written
(it answers once its channels handled what they were sent; a socket that just goes away
makes it drop what they still held). A clean exit waits for it, up to shutdown_timeout."""

import subprocess
import time

from helpers import wait_for


def test_a_clean_exit_without_confirms_waits_for_the_close_ok(
        broker, proxied_config, proxy, queue_name, tailrabbit_factory):
    proxied_config["rabbitmq"].update(confirm="False", heartbeat=10)
    proxied_config["tailrabbit"]["shutdown_timeout"] = 20
    proxied_config["input:bulk"] = {"type": "stdin", "queue": queue_name}
    proc = tailrabbit_factory(proxied_config, stdin=subprocess.PIPE)
    first = [b"first %05d" % i for i in range(1000)]
    proc.process.stdin.write(b"\n".join(first) + b"\n")
    proc.process.stdin.flush()
    broker.wait_depth(queue_name, 1000)
    proxy.set_mode("stall")             # the broker takes nothing more, for now
    second = [b"second %05d" % i for i in range(1000)]
    proc.process.stdin.write(b"\n".join(second) + b"\n")
    proc.process.stdin.close()
    proc.wait_for_event("inputs_finished")
    stalled = time.monotonic()
    # It may not exit while the broker has not answered its close: the old code gave up
    # after 2 s (its close timeout), with the lines still on their way.
    while time.monotonic() - stalled < 6:
        assert proc.process.poll() is None, "exited without the broker's close-ok\n" + \
            proc.log()
        time.sleep(0.1)
    proxy.set_mode("pass")
    assert proc.wait(30) == 0, proc.log()
    wait_for(lambda: broker.depth(queue_name) >= 2000, timeout=10,
             message=f"2000 lines (have {broker.depth(queue_name)})")
    assert [m.body for m in broker.consume_all(queue_name)] == first + second
