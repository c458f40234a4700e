"""The lag metrics of a real process: file lag and the oldest unconfirmed line go to 0 once
the broker confirmed, show exactly what a stalled broker holds back, and return to 0 when
it answers again. Also: every metric the config/ examples use is in this real /metrics."""

import json
import re

from helpers import wait_for
from integration.test_metrics import free_port, get
from unit.test_monitoring_files import (DASHBOARD, RULES, dashboard_queries, promql_names,
                                        rule_blocks)


def scrape(port):
    """{(name, frozenset of label items): value} of every sample in /metrics."""
    status, text = get(port, "/metrics")
    assert status == 200
    samples = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def value(port, name, **labels):
    return scrape(port).get((name, frozenset(labels.items())))


def test_lag_metrics_follow_a_stalled_broker(broker, proxy, proxied_config, queue_name,
                                             tailrabbit_factory, tmp_path):
    port = free_port()
    path = str(tmp_path / "app.log")
    lines = [b"line %05d " % i + b"x" * (i % 50) for i in range(2000)]
    with open(path, "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))
    proxied_config["tailrabbit"]["metrics"] = f"127.0.0.1:{port}"
    proxied_config["input:app"] = {"type": "file", "path": path, "queue": queue_name,
                                   "start_at": "beginning"}
    proc = tailrabbit_factory(proxied_config)

    # Connected: every line confirmed, nothing behind.
    broker.wait_depth(queue_name, len(lines))
    wait_for(lambda: value(port, "tailrabbit_lines_confirmed_total", input="app")
             == len(lines), message="every line confirmed")
    wait_for(lambda: value(port, "tailrabbit_file_lag_bytes", input="app", path=path) == 0,
             message="lag 0 once confirmed")
    assert value(port, "tailrabbit_oldest_unconfirmed_seconds", input="app") == 0

    # Stalled: the appended bytes are read and published, never confirmed.
    proxy.set_mode("stall")
    appended = [b"late %04d" % i for i in range(300)]
    data = b"".join(line + b"\n" for line in appended)
    with open(path, "ab") as handle:
        handle.write(data)
    wait_for(lambda: value(port, "tailrabbit_lines_read_total", input="app")
             == len(lines) + len(appended), message="the appended lines read")
    assert value(port, "tailrabbit_file_lag_bytes", input="app", path=path) == len(data)
    first = wait_for(lambda: (lambda age: age if age >= 2 else None)(
        value(port, "tailrabbit_oldest_unconfirmed_seconds", input="app")),
        message="the oldest unconfirmed line ages")
    # The heartbeat timeout ends the connection; a reconnect is tried (the proxy sees it)
    # only once the unconfirmed lines are set aside to be published again, and fails
    # while the stall lasts: they are still counted, still ageing, the lag unchanged.
    connections = proxy.connections
    wait_for(lambda: proxy.connections > connections, timeout=30,
             message="a reconnect after the heartbeat timeout")
    assert value(port, "tailrabbit_connected") == 0
    wait_for(lambda: value(port, "tailrabbit_oldest_unconfirmed_seconds", input="app")
             >= first + 2, message="the oldest unconfirmed line keeps ageing")
    samples = scrape(port)
    assert samples[("tailrabbit_file_lag_bytes",
                    frozenset({"input": "app", "path": path}.items()))] == len(data)
    assert samples[("tailrabbit_lines_confirmed_total", frozenset({"input": "app"}.items()))] \
        == len(lines)
    check_examples_use_scraped_names({name for name, _ in samples},
                                     {key for _, labels in samples for key, _ in labels})

    # The broker answers again: everything confirmed, both back to 0.
    proxy.set_mode("pass")
    wait_for(lambda: value(port, "tailrabbit_file_lag_bytes", input="app", path=path) == 0,
             timeout=90, message="lag back to 0")
    wait_for(lambda: value(port, "tailrabbit_oldest_unconfirmed_seconds", input="app") == 0,
             message="nothing unconfirmed")
    broker.wait_depth(queue_name, len(lines) + len(appended))
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert set(bodies) == set(lines) | set(appended)
    # At-least-once: only the 300 lines unconfirmed at the stall may come twice.
    assert len(bodies) <= len(lines) + 2 * len(appended)


def check_examples_use_scraped_names(names, labels):
    """Every metric and label of the alert rules and the dashboard is in a real scrape."""
    exprs = []
    with open(RULES) as handle:
        exprs += [block["expr"] for block in rule_blocks(handle.read())]
    with open(DASHBOARD) as handle:
        exprs += dashboard_queries(json.load(handle))[0]
    for expr in exprs:
        used, used_labels = promql_names(expr)
        assert used - names <= {"up"}, (expr, used - names)
        assert used_labels - labels <= {"job", "instance"}, (expr, used_labels - labels)
