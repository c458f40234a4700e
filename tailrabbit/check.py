"""`tailrabbit --check`: the config is valid (already parsed); report the inputs, try the
broker's login. Exit 0 when it accepted us, 69 when no broker answered."""

import os
import stat

import amqp

from tailrabbit.cli import EX_OK, EX_UNAVAILABLE


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
    if item.type == "fifo" and not stat.S_ISFIFO(mode):
        return f"{path} (exists but is NOT a FIFO: the input will wait until it is)"
    return path


def check(settings):
    from tailrabbit.publisher.session import SOCKET_SETTINGS, describe, ssl_options

    print(f"config {settings.path}: valid")
    for item in settings.inputs:
        print(f"  input {item.name}: {item.type} {describe_path(item)} -> queue {item.queue}"
              f" (durable={item.durable}, delivery_mode={item.delivery_mode}, "
              f"overflow={item.overflow})")
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
