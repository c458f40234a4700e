"""INI file -> typed, frozen settings (settings.py). With ini.py, the only code that
touches configparser.

Every problem is raised as a ConfigError naming the file, section and key, so the CLI can
print one line and exit 78 instead of a traceback. Unknown keys are errors: a typo such as
`durabel = False` must not silently fall back to a default on a production host.
"""

import configparser
import json
import os

from tailrabbit.settings import (  # noqa: F401  (re-exported for callers of config)
    DEFAULT_BUFFER, DEFAULT_BUFFER_BYTES, DEFAULT_OVERFLOW, HOST_ORDERS, INPUT_TYPES, LOG_LEVELS,
    OVERFLOW_POLICIES, REPLICATED_QUEUE_TYPES,
    BrokerSettings, InputSettings, LoggingSettings, ProcessSettings, Settings,
    default_state_dir)
from tailrabbit.ini import ConfigError, Section

PROCESS_KEYS = {"state_dir", "buffer", "buffer_bytes", "stats_interval", "shutdown_timeout",
                "spool_max_bytes", "metrics"}
BROKER_KEYS = {"host", "port", "vhost", "user", "password", "password_file", "password_env",
               "heartbeat", "connect_timeout", "refresh", "confirm", "ssl", "ssl_ca",
               "ssl_cert", "ssl_key", "ssl_verify", "host_order"}
# Keys of the seed's [rabbitmq] section, and per-input defaults in a config with inputs.
INPUT_DEFAULT_KEYS = {"durable", "auto_delete", "delivery_mode"}
SEED_KEYS = {"queue", "buffer"} | INPUT_DEFAULT_KEYS
INPUT_KEYS = {"type", "path", "queue", "durable", "auto_delete", "delivery_mode", "exchange",
              "routing_key", "arguments", "start_at", "max_line_bytes", "overflow",
              "rotate_wait", "follow_symlinks"}
LOGGING_KEYS = {"level", "log_format", "log_datefmt"}


def load(path, environ=None):
    """Parse the INI file at `path` into Settings, or raise ConfigError."""
    environ = os.environ if environ is None else environ
    parser = configparser.ConfigParser(interpolation=configparser.BasicInterpolation(),
                                       default_section="__no_defaults__")
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ConfigError(path, None, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, None, f"cannot read: {exc}") from None
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(path, None, None, f"not a valid INI file: {first}") from None

    known = {"tailrabbit", "rabbitmq", "logging"}
    input_names = [s for s in parser.sections() if s.startswith("input:")]
    for name in parser.sections():
        if name not in known and not name.startswith("input:"):
            raise ConfigError(path, name, None,
                              "unknown section (expected tailrabbit, rabbitmq, logging "
                              "or input:NAME)")
    rabbit = Section(path, parser, "rabbitmq")
    seed_mode = not input_names
    if seed_mode:
        rabbit.check_keys(BROKER_KEYS | SEED_KEYS)
    else:
        rabbit.check_keys(BROKER_KEYS | INPUT_DEFAULT_KEYS)

    process = _process(Section(path, parser, "tailrabbit"), rabbit if seed_mode else None)
    warnings = []
    broker = _broker(rabbit, environ, warnings)
    defaults = {
        "durable": rabbit.boolean("durable", True),
        "auto_delete": rabbit.boolean("auto_delete", False),
        "delivery_mode": _delivery_mode(rabbit, 2),
    }
    if seed_mode:
        inputs = (_seed_input(rabbit, defaults),)
    else:
        inputs = tuple(_input(Section(path, parser, name), defaults) for name in input_names)
    _check_routes(path, inputs)
    _check_buffer_bytes(path, process, inputs)
    return Settings(path=path, process=process, broker=broker, inputs=inputs,
                    logging=_logging(Section(path, parser, "logging")),
                    warnings=tuple(warnings))


def _process(section, seed_rabbit):
    section.check_keys(PROCESS_KEYS)
    buffer = section.integer("buffer", DEFAULT_BUFFER, minimum=1)
    if seed_rabbit is not None and "buffer" in seed_rabbit and "buffer" not in section:
        buffer = seed_rabbit.integer("buffer", DEFAULT_BUFFER, minimum=1)
    metrics = section.string("metrics")
    return ProcessSettings(
        state_dir=os.path.abspath(os.path.expanduser(section.string("state_dir")
                                                     or default_state_dir())),
        buffer=buffer,
        buffer_bytes=section.integer("buffer_bytes", DEFAULT_BUFFER_BYTES, minimum=1),
        stats_interval=section.number("stats_interval", 60.0, minimum=0),
        shutdown_timeout=section.number("shutdown_timeout", 10.0, minimum=0),
        spool_max_bytes=section.integer("spool_max_bytes", 1 << 30, minimum=0),
        metrics=_host_port(section, "metrics", metrics, None) if metrics else None,
    )


def _host_port(section, key, text, default_port):
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, None
    if port is None:
        if default_port is None:
            raise section.error(key, f"must be HOST:PORT, got {text!r}")
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise section.error(key, f"must be HOST:PORT with a port 1-65535, got {text!r}")
    return host.strip("[]"), int(port)


def _broker(section, environ, warnings):
    ssl = section.boolean("ssl", False)
    # AMQPS listens on 5671 by convention; a TLS config without a port means that one.
    port = section.integer("port", 5671 if ssl else 5672, minimum=1, maximum=65535)
    hosts = tuple(_host_port(section, "host", item.strip(), port)
                  for item in section.string("host", "localhost").split(",") if item.strip())
    if not hosts:
        raise section.error("host", "names no host")
    given = [key for key in ("password", "password_file", "password_env") if key in section]
    if len(given) > 1:
        raise section.error(given[1], f"give only one of {', '.join(given)}")
    password = section.string("password", "guest")
    if "password_file" in section:
        password = _password_from_file(section, section.string("password_file"), warnings)
    elif "password_env" in section:
        name = section.string("password_env")
        if name not in environ:
            raise section.error("password_env", f"environment variable {name!r} is not set")
        password = environ[name]
    for key in ("ssl_ca", "ssl_cert", "ssl_key"):
        value = section.string(key)
        if value and not os.path.isfile(value):
            raise section.error(key, f"no such file: {value}")
    return BrokerSettings(
        hosts=hosts,
        vhost=section.string("vhost", "/"),
        user=section.string("user", "guest"),
        password=password,
        heartbeat=section.integer("heartbeat", 30, minimum=0),
        connect_timeout=section.number("connect_timeout", 5.0, minimum=0.1),
        refresh=section.number("refresh", 50.0, minimum=1, none_ok=True),
        confirm=section.boolean("confirm", True),
        ssl=ssl,
        ssl_ca=section.string("ssl_ca"),
        ssl_cert=section.string("ssl_cert"),
        ssl_key=section.string("ssl_key"),
        ssl_verify=section.boolean("ssl_verify", True),
        host_order=section.choice("host_order", "ordered", HOST_ORDERS),
    )


def _password_from_file(section, path, warnings):
    path = os.path.expanduser(path)
    try:
        mode = os.stat(path).st_mode
        with open(path, encoding="utf-8") as handle:
            password = handle.read().rstrip("\r\n")
    except OSError as exc:
        raise section.error("password_file", f"cannot read {path}: {exc.strerror}") from None
    if mode & 0o077:
        warnings.append(f"{section.path}: [rabbitmq] password_file: {path} can be read by "
                        f"others (mode {mode & 0o777:o}); chmod 600 it")
    return password


def _delivery_mode(section, default):
    value = section.integer("delivery_mode", default)
    if value not in (1, 2):
        raise section.error("delivery_mode", f"must be 1 (transient) or 2 (persistent), "
                                             f"got {value}")
    return value


def _seed_input(rabbit, defaults):
    queue = rabbit.string("queue") or "stdin"
    return InputSettings(name="stdin", type="stdin", path=None, queue=queue,
                         routing_key=queue, overflow="block", **defaults)


def _input(section, defaults):
    section.check_keys(INPUT_KEYS)
    name = section.name[len("input:"):]
    if not name:
        raise section.error(None, "an input needs a name after 'input:'")
    kind = section.choice("type", None, INPUT_TYPES)
    if kind is None:
        raise section.error("type", f"is required: one of {', '.join(INPUT_TYPES)}")
    path = section.string("path")
    if kind in ("fifo", "file") and not path:
        raise section.error("path", f"is required for type = {kind}")
    if kind == "stdin" and path:
        raise section.error("path", "does not apply to type = stdin")
    if kind != "file" and "start_at" in section:
        raise section.error("start_at", "applies only to type = file")
    if kind != "file" and "follow_symlinks" in section:
        raise section.error("follow_symlinks", "applies only to type = file")
    queue = section.string("queue") or name
    arguments = _arguments(section)
    durable = section.boolean("durable", defaults["durable"])
    auto_delete = section.boolean("auto_delete", defaults["auto_delete"])
    _check_replicated(section, dict(arguments), durable, auto_delete)
    return InputSettings(
        name=name, type=kind, path=os.path.abspath(os.path.expanduser(path)) if path else None,
        queue=queue,
        durable=durable,
        auto_delete=auto_delete,
        delivery_mode=_delivery_mode(section, defaults["delivery_mode"]),
        exchange=section.string("exchange", ""),
        routing_key=section.string("routing_key") or queue,
        arguments=arguments,
        start_at=section.choice("start_at", "end", ("beginning", "end")),
        max_line_bytes=section.integer("max_line_bytes", 1 << 20, minimum=1),
        overflow=section.choice("overflow", DEFAULT_OVERFLOW[kind], OVERFLOW_POLICIES),
        rotate_wait=section.number("rotate_wait", 5.0, minimum=0),
        follow_symlinks=section.boolean("follow_symlinks", False),
    )


def _arguments(section):
    text = section.string("arguments")
    if not text:
        return ()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise section.error("arguments", f"is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise section.error("arguments", "must be a JSON object, like {\"x-queue-type\": "
                                         "\"quorum\"}")
    return tuple(sorted(value.items()))


def _check_replicated(section, arguments, durable, auto_delete):
    """Quorum and stream queues are always durable and never auto-deleted: the broker
    refuses any other declare (PRECONDITION_FAILED) forever, so refuse it here, once."""
    kind = arguments.get("x-queue-type")
    if kind not in REPLICATED_QUEUE_TYPES:
        return
    if not durable:
        raise section.error("durable", f"must be True for a {kind} queue "
                                       f"(arguments x-queue-type = {kind})")
    if auto_delete:
        raise section.error("auto_delete", f"must be False for a {kind} queue "
                                           f"(arguments x-queue-type = {kind})")


def _check_routes(path, inputs):
    """Two inputs of one queue must declare it alike, or the broker refuses the second."""
    seen = {}
    stdin_inputs = [i.name for i in inputs if i.type == "stdin"]
    if len(stdin_inputs) > 1:
        raise ConfigError(path, f"input:{stdin_inputs[1]}", "type",
                          "only one input can read stdin")
    for item in inputs:
        flags = (item.durable, item.auto_delete, item.arguments)
        other = seen.setdefault(item.queue, (item.name, flags))
        if other[1] != flags:
            raise ConfigError(path, f"input:{item.name}", "queue",
                              f"queue {item.queue!r} is also used by input {other[0]!r} "
                              f"with other durable/auto_delete/arguments")


def _check_buffer_bytes(path, process, inputs):
    """A buffer_bytes below an input's max_line_bytes is refused: one line could be larger
    than the whole buffer, which then holds a line at a time. It is most likely a line
    count written under the byte key (`buffer_bytes = 100000`); refusing it beats a
    shipper that silently crawls or spools everything at the first burst. Any value at
    or above every max_line_bytes works (the bound is passed by at most one batch)."""
    for item in inputs:
        if process.buffer_bytes < item.max_line_bytes:
            raise ConfigError(path, "tailrabbit", "buffer_bytes",
                              f"must be at least max_line_bytes of input {item.name} "
                              f"({item.max_line_bytes}), got {process.buffer_bytes}: "
                              f"it counts bytes (buffer counts lines)")


def _logging(section):
    section.check_keys(LOGGING_KEYS)
    level = section.string("level", "INFO")
    return LoggingSettings(
        level=parse_level(level, lambda problem: section.error("level", problem)),
        format=section.string("log_format", LoggingSettings.format),
        datefmt=section.string("log_datefmt", LoggingSettings.datefmt),
    )


def parse_level(text, error):
    """A level name (DEBUG, INFO, ...) or a number such as the seed's `-l 30`."""
    text = str(text).strip()
    if text.isdigit():
        return text
    if text.upper() not in LOG_LEVELS:
        raise error(f"must be one of {', '.join(LOG_LEVELS)} or a number, got {text!r}")
    return text.upper()
