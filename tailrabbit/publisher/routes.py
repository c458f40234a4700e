"""What a reload changes for the publisher: does it need a new connection?

A reconnect is planned (it waits for every confirm, so it loses and repeats nothing) but it
still costs a round of declares and a pause in publishing; SIGHUP used to force one every
time, so 40 HUPs meant 40 reconnects. Now only what the connection or the frames depend on
counts: the broker settings, and each input's route, which is every input setting except
the ones that only change how the input reads. New settings count as route settings
unless listed here: a reconnect too many is cheap, a stale encoder or queue is not.
"""

import dataclasses

from tailrabbit import logevents

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


class ReloadedRoutes:
    """A mixin of Publisher (loop.py): a reload's new settings, and the routes a
    connection declares, removed inputs' included while lines of theirs are pending."""

    def update(self, broker, inputs):
        """A reload. Routes of removed inputs stay while lines of theirs are pending; a
        planned reconnect (which loses and repeats nothing) happens only when the broker
        settings or a route changed, or an input was added or removed."""
        new = {item.name: item for item in inputs}
        reason = reconnect_reason(self.broker, self.inputs, broker, new)
        for name, item in self.inputs.items():
            if name not in new:
                self._retired[name] = item
        for name in new:
            self._retired.pop(name, None)
        self.broker, self.inputs = broker, new
        self._hosts.update(broker.hosts, broker.host_order)
        if reason:
            logevents.reconnect_for_reload(reason=reason)
            self._reconnect_now = True
            self.buffer.readable.set()          # wake the loop to notice

    def _routes(self):
        """The configured inputs, plus removed ones with lines still to publish. Removed
        inputs' settings are never forgotten (a few bytes each): a line of one that turns
        up later (a spool replay) finds its route again at the next connection."""
        pending = {b.input for b in self._resend} | {
            b.input for b in self._trackers.batches()}
        needed = {name: item for name, item in self._retired.items()
                  if name in pending or self.buffer.held(name) or self.route_needed(name)}
        return {**needed, **self.inputs}
