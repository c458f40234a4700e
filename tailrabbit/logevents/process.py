"""Events of the process as a whole: its lifecycle (start, signals, stop, crash), the
input set (stop, spools, checkpoint saves), SIGHUP reloads, state_dir, the metrics server
and the periodic stats line."""

from tailrabbit.logevents.event import ERROR, INFO, WARNING, Event

LOGGER = "tailrabbit"

# ---- lifecycle (daemon.py, cli.py) ---------------------------------------------------


def _started_text(f):
    return (f"tailrabbit started: {f['count']} inputs ({', '.join(f['inputs'])}), buffer "
            f"{f['buffer']} lines or {f['buffer_bytes']} bytes")


# `inputs`: a list of "name:kind" (web:fifo); buffer, buffer_bytes: the [tailrabbit] bounds.
started = Event(
    "started", INFO, _started_text, "count inputs buffer buffer_bytes", LOGGER)
# Each config warning (a password_file readable by others), once logging is set up.
config_warning = Event(
    "config_warning", WARNING, "{reason}", "reason", LOGGER)
# A setting that parsed but cannot be applied (state_dir, a metrics port in use): exit 78.
# Only with style = json: the text style prints the same bytes bare, its one stderr line.
startup_failed = Event(
    "startup_failed", ERROR, "tailrabbit: {reason}", "reason", LOGGER)
# `signal`: SIGTERM or SIGINT; `seconds`: shutdown_timeout.
stopping = Event(
    "stopping", INFO, "{signal}: stopping, draining for at most {seconds:g} s",
    "signal seconds", LOGGER)
drain_cut_short = Event(
    "drain_cut_short", WARNING, "{signal} while draining: stopping now", "signal", LOGGER)
inputs_finished = Event(
    "inputs_finished", INFO, "all inputs finished; waiting for the broker to confirm every "
    "line", (), LOGGER)
# `task`: "publisher", "input NAME" or "spool replay of NAME"; `reason`: the error's repr.
crashed = Event(
    "crashed", ERROR, "{task} failed: {reason}; spooling what is held, then exiting so the "
    "supervisor restarts us", "task reason", LOGGER)
crash_stop_failed = Event(
    "crash_stop_failed", ERROR, "while stopping after the failure: {reason}", "reason",
    LOGGER)
# The last line of a run. stopped (exit 0): "stopped", or "done: every line confirmed"
# once every stdin input reached its end; exiting (exit 1): after `crashed`.
stopped = Event("stopped", INFO, "{reason}", "reason", LOGGER)
exiting = Event("exiting", ERROR, "{reason}", "reason", LOGGER)

# ---- the input set (inputset.py) -------------------------------------------------------

spool_orphaned = Event(
    "spool_orphaned", WARNING,
    "{path} holds {bytes} bytes of lines spooled by input {input}, which is not in the "
    "config; add [input:{input}] back to publish them",
    "path bytes input", LOGGER)
reload_unconfirmed = Event(
    "reload_unconfirmed", WARNING,
    "lines in flight were not confirmed in time; they may be published twice",
    "input", LOGGER)
unconfirmed_spooled = Event(
    "unconfirmed_spooled", WARNING,
    "{count} lines not confirmed by the broker were spooled to {path}; they are "
    "published first at the next start",
    "input count path", LOGGER)
unconfirmed_lost = Event(
    "unconfirmed_lost", ERROR,
    "{count} lines not confirmed by the broker could not be spooled to {path} "
    "({reason}): they are lost",
    "input count path reason", LOGGER)
stopped_unconfirmed = Event(
    "stopped_unconfirmed", WARNING,
    "stopped with {count} lines of log files not confirmed; they are read again from "
    "the checkpoints at the next start",
    "count", LOGGER)
spool_close_failed = Event(
    "spool_close_failed", ERROR, "cannot close the spool of input {input}: {reason}",
    "input reason", LOGGER)
# Saves run every second: a read-only or full state_dir must not flood the log.
# `what`: "checkpoints" or "spool position".
save_failed = Event(
    "save_failed", ERROR, "cannot save the {what} of input {input}: {reason}",
    "input what reason", LOGGER, limit_by=("input", "what"))
# `task`: the greenlet's description.
stop_timeout = Event(
    "stop_timeout", WARNING, "{task} did not stop within {seconds:.0f} s; going on "
    "without it", "task seconds", LOGGER)

# `reason`: the config error's one line (file, section, key, problem).
reload_refused = Event(
    "reload_refused", ERROR, "SIGHUP: {reason}; keeping the running configuration",
    "reason", LOGGER)
reload_needs_restart = Event(
    "reload_needs_restart", WARNING,
    "SIGHUP: [tailrabbit] and [logging] changes apply at the next restart", (), LOGGER)


def _reloaded_text(f):
    return (f"SIGHUP: configuration reloaded in {f['ms']:.0f} ms: added "
            f"{', '.join(f['added']) or 'none'}, removed {', '.join(f['removed']) or 'none'}, "
            f"changed {', '.join(f['changed']) or 'none'}")


# added, removed, changed: lists of input names.
reloaded = Event(
    "reloaded", INFO, _reloaded_text, "ms added removed changed", LOGGER)

# mode, new_mode: octal text such as 755.
state_dir_mode_fixed = Event(
    "state_dir_mode_fixed", WARNING,
    "state_dir {path} was mode {mode}; made {new_mode} (it holds log lines)",
    "path mode new_mode", LOGGER)
metrics_listening = Event(
    "metrics_listening", INFO, "metrics on http://{address}/metrics", "address",
    "tailrabbit.metrics")

# SIGUSR2: every greenlet's and thread's stack (gevent.util.format_run_info), for "it is
# running but not moving": a stuck greenlet is invisible to py-spy and faulthandler,
# which see only the hub. Code positions only: no locals, so no log content.
tasks_dumped = Event(
    "tasks_dumped", INFO, "SIGUSR2: the stacks of every greenlet and thread:\n{stacks}",
    "stacks", LOGGER)

# Every stats_interval and on SIGUSR1, one per input: the counters of stats.py (a unit
# test checks that they are all here), what the buffer holds, the connection state.
STATS_FIELDS = ("input", "read", "published", "confirmed", "spooled", "dropped",
                "truncated", "returned", "skipped", "filtered", "messages", "buffered",
                "buffered_bytes", "connection")
stats = Event(
    "stats", INFO, "stats " + " ".join(f"{name}={{{name}}}" for name in STATS_FIELDS),
    STATS_FIELDS, "tailrabbit.stats")
