"""`tailrabbit --check`: the config is valid (already parsed); report the inputs, judge
state_dir and the metrics address as the daemon does at start (statedir.py), try the
broker's login. Exit 0 when it accepted us, 69 when no broker answered, 78 when the daemon
would refuse to start."""

import sys

import os
import stat

import amqp

from tailrabbit.cli import EX_CONFIG, EX_OK, EX_UNAVAILABLE


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


def check(settings):
    from tailrabbit.control import StartupError
    from tailrabbit.publisher.session import SOCKET_SETTINGS, describe, ssl_options
    from tailrabbit.statedir import check_metrics, check_state_dir

    print(f"config {settings.path}: valid")
    for item in settings.inputs:
        print(f"  input {item.name}: {item.type} {describe_path(item)} -> queue {item.queue}"
              f" (durable={item.durable}, delivery_mode={item.delivery_mode}, "
              f"overflow={item.overflow})")
    try:
        print(f"state_dir {check_state_dir(settings)}")
        metrics = check_metrics(settings)
    except StartupError as error:
        print(f"tailrabbit: {error}", file=sys.stderr)
        return EX_CONFIG
    if metrics:
        print(metrics)
    broker = settings.broker
    for host, port in broker.hosts:
        connection = amqp.Connection(
            host=f"{host}:{port}", userid=broker.user, password=broker.password,
            virtual_host=broker.vhost, connect_timeout=broker.connect_timeout,
            socket_settings=SOCKET_SETTINGS, ssl=ssl_options(broker, host))
        try:
            connection.connect()
        except Exception as error:     # any failure is a finding to report, not a crash
            print(f"broker {host}:{port}: no: {describe(error)}")
            continue
        server = connection.server_properties or {}
        print(f"broker {host}:{port}: login accepted as {broker.user!r} on vhost "
              f"{broker.vhost!r} ({server.get('product', '?')} {server.get('version', '?')})")
        connection.close()
        return EX_OK
    return EX_UNAVAILABLE
