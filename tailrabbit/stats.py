"""Per-input counters, the periodic stats log line, and the connection state.

Counters are plain integers bumped by whoever does the work (inputs count what they read,
the publisher what it sent and what the broker confirmed); nothing here is on the hot path
beyond an attribute add per batch.
"""

from tailrabbit import logevents

# published counts lines; messages counts publishes (fewer with batch_lines > 1)
COUNTERS = ("read", "published", "confirmed", "spooled", "dropped", "truncated", "returned",
            "skipped", "filtered", "messages")


class InputStats:
    __slots__ = COUNTERS

    def __init__(self):
        for name in COUNTERS:
            setattr(self, name, 0)


class Stats:
    def __init__(self, input_names=()):
        self.inputs = {name: InputStats() for name in input_names}
        self.connected = False
        self.connection_state = "connecting"

    def of(self, input_name):
        stats = self.inputs.get(input_name)
        if stats is None:
            stats = self.inputs[input_name] = InputStats()
        return stats

    def log(self, buffered_of, buffered_bytes_of):
        """One INFO line per input; `buffered_of(name)` gives the lines it holds now,
        `buffered_bytes_of(name)` their bytes."""
        for name, counters in self.inputs.items():
            logevents.stats(input=name, **{key: getattr(counters, key) for key in COUNTERS},
                            buffered=buffered_of(name), buffered_bytes=buffered_bytes_of(name),
                            connection=self.connection_state)
