"""Prometheus `/metrics` and `/health`, served by a gevent WSGI server inside the process.

The figures are read from the same counters the stats log line uses, at scrape time, by
a custom collector: nothing is added to the per-line path. prometheus_client does the
exposition format (escaping, types, HELP lines), which is easy to get subtly wrong by hand.
The lag gauges (lag.py) are computed the same way, at scrape time: an fstat per open file
and a look at the oldest batch of each queue.
"""

import logging

from gevent.pywsgi import WSGIServer
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from tailrabbit import logevents
from tailrabbit.lag import file_lag, oldest_unconfirmed_seconds

# The WSGI server's error log (a failing request); events go through logevents.
log = logging.getLogger("tailrabbit.metrics")

COUNTERS = (
    ("read", "tailrabbit_lines_read", "Lines read from the input."),
    ("published", "tailrabbit_lines_published", "Publishes sent to the broker "
                                                "(a line published again counts again)."),
    ("confirmed", "tailrabbit_lines_confirmed", "Lines the broker confirmed."),
    ("spooled", "tailrabbit_lines_spooled", "Lines written to the on-disk spool."),
    ("dropped", "tailrabbit_lines_dropped", "Lines dropped (overflow = drop, spool full)."),
    ("truncated", "tailrabbit_lines_truncated", "Lines cut at max_line_bytes."),
    ("returned", "tailrabbit_lines_returned", "Lines the broker returned as unroutable."),
    ("skipped", "tailrabbit_lines_skipped", "Lines of a file judged a copy of lines "
                                            "already shipped, not shipped again."),
    ("filtered", "tailrabbit_lines_filtered", "Lines not published by include/exclude "
                                              "(they count as done for checkpoints)."),
    ("messages", "tailrabbit_messages_published", "Messages sent to the broker: with "
                                                  "batch_lines > 1 one holds many lines."),
)


class TailrabbitCollector:
    def __init__(self, stats, buffer, inputs=None, publisher=None):
        """`inputs`: the daemon's InputSet (its `inputs` dict: the file inputs' lag);
        `publisher`: lines awaiting confirms. Either may be None (no such figures)."""
        self.stats, self.buffer = stats, buffer
        self.inputs, self.publisher = inputs, publisher

    def collect(self):
        for attribute, name, help_text in COUNTERS:
            family = CounterMetricFamily(name, help_text, labels=["input"])
            for input_name, counters in self.stats.inputs.items():
                family.add_metric([input_name], getattr(counters, attribute))
            yield family
        buffered = GaugeMetricFamily("tailrabbit_buffered_lines",
                                     "Lines held in the memory buffer.", labels=["input"])
        for input_name in self.stats.inputs:
            buffered.add_metric([input_name], self.buffer.held(input_name))
        yield buffered
        buffered_bytes = GaugeMetricFamily("tailrabbit_buffered_bytes",
                                           "Bytes of the lines held in the memory buffer.",
                                           labels=["input"])
        for input_name in self.stats.inputs:
            buffered_bytes.add_metric([input_name], self.buffer.held_bytes(input_name))
        yield buffered_bytes
        yield GaugeMetricFamily("tailrabbit_connected", "1 while connected to a broker.",
                                value=1 if self.stats.connected else 0)
        yield from self._lag()

    def _lag(self):
        lag = GaugeMetricFamily("tailrabbit_file_lag_bytes",
                                "Bytes of an open file after its confirmed checkpoint offset "
                                "(read or not, not yet confirmed by the broker).",
                                labels=["input", "path"])
        items = list(self.inputs.inputs.values()) if self.inputs is not None else []
        for (input_name, path), size in sorted(file_lag(items).items()):
            lag.add_metric([input_name, path], size)
        yield lag
        oldest = GaugeMetricFamily("tailrabbit_oldest_unconfirmed_seconds",
                                   "Age of the oldest line read and not yet confirmed by the "
                                   "broker (buffered or in flight; 0 when none).",
                                   labels=["input"])
        ages = oldest_unconfirmed_seconds(self.stats.inputs, self.buffer, self.publisher)
        for input_name, age in ages.items():
            oldest.add_metric([input_name], age)
        yield oldest


def healthy(stats, buffer):
    """Connected, or at least still holding every line in memory (below both bounds)."""
    return stats.connected or not buffer.full()


class MetricsServer:
    def __init__(self, address, stats, buffer, inputs=None, publisher=None):
        self.address = address
        self.stats, self.buffer = stats, buffer
        self.registry = CollectorRegistry()
        self.registry.register(TailrabbitCollector(stats, buffer, inputs, publisher))
        self.registry.register(ProcessCollector(registry=None))
        self.server = WSGIServer(address, self.app, log=None, error_log=log)

    def app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body = generate_latest(self.registry)
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
            return [body]
        if path == "/health":
            ok = healthy(self.stats, self.buffer)
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "text/plain")])
            return [b"ok\n" if ok else b"broker unreachable and the buffer is full\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"see /metrics and /health\n"]

    def start(self):
        self.server.start()
        logevents.metrics_listening(address="%s:%d" % self.address)

    def stop(self):
        self.server.stop(timeout=1)
