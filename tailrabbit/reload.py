"""SIGHUP: re-read the config and apply input changes without touching the others."""

import dataclasses
import logging
import time

from tailrabbit import config as config_module

log = logging.getLogger("tailrabbit")


def reload_config(daemon):
    """Re-read the config; start added inputs, stop removed ones (their buffered
    lines are still published), apply changed ones; leave the others untouched."""
    started = time.monotonic()
    try:
        new = config_module.load(daemon.settings.path)
    except config_module.ConfigError as error:
        log.error("SIGHUP: %s; keeping the running configuration", error)
        return
    old = {item.name: item for item in daemon.settings.inputs}
    fresh = {item.name: item for item in new.inputs}
    removed = [name for name in old if name not in fresh]
    added = [name for name in fresh if name not in old]
    changed = [name for name in fresh if name in old and fresh[name] != old[name]]
    for name in removed:
        daemon.stop_input(name)
    for name in changed:
        if not _reading_changed(old[name], fresh[name]):
            daemon.inputs[name].settings = fresh[name]
        elif old[name].type == "file":           # save its checkpoints, then resume
            daemon.stop_input(name)
            daemon.start_input(fresh[name])
        else:                                    # the new reader first: a FIFO writer
            daemon.start_input(fresh[name])      # never finds the pipe without one
            daemon.stop_input(name, replace=True)
    for name in added:
        daemon.start_input(fresh[name])
    daemon.publisher.update(new.broker, new.inputs)
    if new.process != daemon.settings.process or new.logging != daemon.settings.logging:
        log.warning("SIGHUP: [tailrabbit] and [logging] changes apply at the next "
                    "restart")
    daemon.settings = dataclasses.replace(new, process=daemon.settings.process,
                                        logging=daemon.settings.logging)
    log.info("SIGHUP: configuration reloaded in %.0f ms: added %s, removed %s, "
             "changed %s", (time.monotonic() - started) * 1000,
             ", ".join(added) or "none", ", ".join(removed) or "none",
             ", ".join(changed) or "none")


def _reading_changed(old, new):
    """Settings that change how an input reads (vs. where its lines go)."""
    keys = ("type", "path", "max_line_bytes", "overflow", "start_at", "rotate_wait")
    return any(getattr(old, key) != getattr(new, key) for key in keys)
