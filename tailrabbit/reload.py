"""SIGHUP: re-read the config and apply input changes without touching the others.

`plan(old, new)` is pure (unit-tested without a daemon): which inputs are added, removed,
retuned (only where their lines go, or other settings read at use: no restart), or
restarted (how they read changed). `reload_config` applies a plan to a running daemon.
"""

import dataclasses
import time
from typing import NamedTuple

from tailrabbit import config as config_module
from tailrabbit import logevents

# Settings that change how an input reads (vs. where its lines go): a restart applies them.
READING_KEYS = ("type", "path", "max_line_bytes", "overflow", "start_at", "rotate_wait")


class ReloadPlan(NamedTuple):
    added: list
    removed: list
    retuned: list
    restarted: list

    @property
    def changed(self):
        return self.retuned + self.restarted


def plan(old_inputs, new_inputs):
    old = {item.name: item for item in old_inputs}
    new = {item.name: item for item in new_inputs}
    changed = [name for name in new if name in old and new[name] != old[name]]
    restarted = [name for name in changed if _reading_changed(old[name], new[name])]
    return ReloadPlan(added=[name for name in new if name not in old],
                      removed=[name for name in old if name not in new],
                      retuned=[name for name in changed if name not in restarted],
                      restarted=restarted)


def _reading_changed(old, new):
    return any(getattr(old, key) != getattr(new, key) for key in READING_KEYS)


def reload_config(daemon):
    """Re-read the config and apply it; a config that does not load keeps the running one.

    Nothing is repeated: a restarted file input drops its buffered lines (it reads them
    again from its checkpoint) and waits for its lines in flight; a restarted FIFO or
    stdin input hands what its old reader held to the spool they share.
    """
    started = time.monotonic()
    try:
        new = config_module.load(daemon.settings.path)
    except config_module.ConfigError as error:
        logevents.reload_refused(reason=str(error))
        return
    steps = plan(daemon.settings.inputs, new.inputs)
    fresh = {item.name: item for item in new.inputs}
    inputs = daemon.inputs
    for name in steps.removed:
        inputs.remove(name)
    for name in steps.retuned:
        inputs.inputs[name].settings = fresh[name]
    for name in steps.restarted:
        if fresh[name].type == "file" and inputs.inputs[name].kind == "file":
            inputs.restart_file_input(fresh[name], daemon.wait_delivered)
        elif inputs.inputs[name].kind == "file":     # file -> fifo/stdin: a new input
            inputs.remove(name)
            inputs.add(fresh[name])
        else:
            inputs.replace(fresh[name])
    for name in steps.added:
        inputs.add(fresh[name])
    daemon.publisher.update(new.broker, new.inputs)
    if new.process != daemon.settings.process or new.logging != daemon.settings.logging:
        logevents.reload_needs_restart()
    daemon.settings = dataclasses.replace(new, process=daemon.settings.process,
                                          logging=daemon.settings.logging)
    logevents.reloaded(ms=(time.monotonic() - started) * 1000, added=steps.added,
                       removed=steps.removed, changed=steps.changed)
