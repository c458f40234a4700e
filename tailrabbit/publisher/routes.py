"""What a reload changes for the publisher: does it need a new connection?

A reconnect is planned (it waits for every confirm, so it loses and repeats nothing) but it
still costs a round of declares and a pause in publishing; SIGHUP used to force one every
time, so 40 HUPs meant 40 reconnects. Now only what the connection or the frames depend on
counts: the broker settings, and each input's route, which is every input setting except
the ones that only change how the input reads. New settings count as route settings
unless listed here: a reconnect too many is cheap, a stale encoder or queue is not.
"""

import dataclasses

# Input settings that change how lines are read, never how they are declared or encoded.
READING_ONLY = frozenset({
    "start_at", "max_line_bytes", "overflow", "rotate_wait", "follow_symlinks",
    "include", "exclude", "multiline", "multiline_start", "multiline_max_lines",
    "multiline_timeout",
})


def route_of(item):
    """The settings of an input that its queue declare and its frames depend on."""
    return tuple((field.name, getattr(item, field.name))
                 for field in dataclasses.fields(item) if field.name not in READING_ONLY)


def reconnect_reason(old_broker, old_inputs, new_broker, new_inputs):
    """Why a reload needs a new connection, or None. Inputs are name -> settings."""
    if old_broker != new_broker:
        return "broker settings changed"
    added = sorted(set(new_inputs) - set(old_inputs))
    removed = sorted(set(old_inputs) - set(new_inputs))
    changed = sorted(name for name in set(old_inputs) & set(new_inputs)
                     if route_of(old_inputs[name]) != route_of(new_inputs[name]))
    parts = [f"{what} {', '.join(names)}" for what, names in
             (("added", added), ("removed", removed), ("route changed", changed)) if names]
    return "; ".join(parts) or None
