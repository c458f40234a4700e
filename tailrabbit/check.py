"""`tailrabbit --check`: the config is valid (already parsed); report the inputs, judge
state_dir and the metrics address as the daemon does at start (statedir.py), try the
broker's login (publisher/probe.py: only publisher/ speaks AMQP). Exit exits.OK (0) when it
accepted us, exits.UNAVAILABLE (69) when no broker answered, exits.CONFIG (78) when the
daemon would refuse to start."""

import os
import stat
import sys

from tailrabbit import exits


def describe_path(item):
    if item.type == "stdin":
        return "stdin"
    path = item.path
    if item.type == "file" and any(ch in path for ch in "*?["):
        import glob
        return f"{path} (glob, {len(glob.glob(path))} files match now)"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"{path} (does not exist yet: " + (
            "will be created)" if item.type == "fifo" else "will be waited for)")
    if item.type == "fifo" and not stat.S_ISFIFO(mode):     # replaced since the load
        return f"{path} (exists but is NOT a FIFO: the daemon refuses it)"
    return path


def shaping(item):
    """What turns this input's lines into messages, when it is not one line each."""
    keys = [("batch_lines", item.batch_lines, 1), ("compress", item.compress, "none"),
            ("multiline", item.multiline, None),
            ("multiline_start", item.multiline_start, None),
            ("include", item.include, None), ("exclude", item.exclude, None)]
    return "".join(f", {key}={value!r}" if isinstance(value, str) else f", {key}={value}"
                   for key, value, default in keys if value != default)


def check(settings):
    from tailrabbit.control import StartupError
    from tailrabbit.publisher.probe import probe
    from tailrabbit.statedir import check_metrics, check_state_dir

    print(f"config {settings.path}: valid")
    for item in settings.inputs:
        print(f"  input {item.name}: {item.type} {describe_path(item)} -> queue {item.queue}"
              f" (durable={item.durable}, delivery_mode={item.delivery_mode}, "
              f"overflow={item.overflow}{shaping(item)})")
    try:
        print(f"state_dir {check_state_dir(settings)}")
        metrics = check_metrics(settings)
    except StartupError as error:
        print(f"tailrabbit: {error}", file=sys.stderr)
        return exits.CONFIG
    if metrics:
        print(metrics)
    broker = settings.broker
    for answer in probe(broker):
        if answer.accepted:
            print(f"broker {answer.host}:{answer.port}: login accepted as {broker.user!r} "
                  f"on vhost {broker.vhost!r} ({answer.server})")
            return exits.OK
        print(f"broker {answer.host}:{answer.port}: no: {answer.problem}")
    return exits.UNAVAILABLE
