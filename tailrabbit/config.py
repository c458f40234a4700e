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
    COMPRESSIONS, DEFAULT_BUFFER, DEFAULT_BUFFER_BYTES, DEFAULT_OVERFLOW, HEADER_NAMES,
    HOST_ORDERS, INPUT_TYPES, LOG_LEVELS,
    OVERFLOW_POLICIES, REPLICATED_QUEUE_TYPES,
    BrokerSettings, InputSettings, LoggingSettings, ProcessSettings, Settings,
    default_state_dir)
from tailrabbit.amqp_limits import shortstr_problem, table_problem
from tailrabbit.ini import ConfigError, Section
from tailrabbit.linekeys import headers_key, multiline_keys, regex_key
from tailrabbit.logging_config import LOGGING_KEYS, logging_settings, parse_level  # noqa: F401
from tailrabbit.refusals import check_inputs, input_name_problem

PROCESS_KEYS = {"state_dir", "buffer", "buffer_bytes", "stats_interval", "shutdown_timeout",
                "spool_max_bytes", "metrics"}
BROKER_KEYS = {"host", "port", "vhost", "user", "password", "password_file", "password_env",
               "heartbeat", "connect_timeout", "refresh", "confirm", "ssl", "ssl_ca",
               "ssl_cert", "ssl_key", "ssl_verify", "host_order"}
# Keys of the seed's [rabbitmq] section, and per-input defaults in a config with inputs.
INPUT_DEFAULT_KEYS = {"durable", "auto_delete", "delivery_mode", "headers"}
SEED_KEYS = {"queue", "buffer"} | INPUT_DEFAULT_KEYS
INPUT_KEYS = {"type", "path", "queue", "durable", "auto_delete", "delivery_mode", "exchange",
              "routing_key", "arguments", "start_at", "max_line_bytes", "overflow",
              "rotate_wait", "follow_symlinks", "headers", "batch_lines", "batch_bytes",
              "compress", "multiline_start", "multiline", "multiline_max_lines",
              "multiline_timeout", "include", "exclude"}
MAX_BATCH_LINES = 100000
# RabbitMQ's default max_message_size (its hard limit is 512 MiB): a longer line is
# refused by the broker (the channel closes) at every try, forever.
MAX_LINE_BYTES = 128 << 20


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
        "headers": headers_key(rabbit, HEADER_NAMES),
    }
    if seed_mode:
        inputs = (_seed_input(rabbit, defaults),)
    else:
        inputs = tuple(_input(Section(path, parser, name), defaults) for name in input_names)
    check_inputs(path, process, inputs)
    return Settings(path=path, process=process, broker=broker, inputs=inputs,
                    logging=logging_settings(Section(path, parser, "logging")),
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
        vhost=_amqp_name(section, "vhost", "/"),
        user=_amqp_name(section, "user", "guest"),
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
    except UnicodeDecodeError:
        raise section.error("password_file", f"{path} is not UTF-8 text") from None
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


def _amqp_name(section, key, default=None):
    """A string AMQP carries as a shortstr (at most 255 bytes)."""
    value = section.string(key, default)
    problem = shortstr_problem(value) if value else None
    if problem:
        raise section.error(key, problem)
    return value


def _seed_input(rabbit, defaults):
    queue = _amqp_name(rabbit, "queue") or "stdin"
    return InputSettings(name="stdin", type="stdin", path=None, queue=queue,
                         routing_key=queue, overflow="block", **defaults)


def _input(section, defaults):
    section.check_keys(INPUT_KEYS)
    name = section.name[len("input:"):]
    if not name:
        raise section.error(None, "an input needs a name after 'input:'")
    problem = input_name_problem(name)
    if problem:
        raise section.error(None, problem)
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
    queue = _amqp_name(section, "queue") or name
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
        exchange=_amqp_name(section, "exchange", ""),
        routing_key=_amqp_name(section, "routing_key") or queue,
        arguments=arguments,
        start_at=section.choice("start_at", "end", ("beginning", "end")),
        max_line_bytes=_max_line_bytes(section),
        overflow=section.choice("overflow", DEFAULT_OVERFLOW[kind], OVERFLOW_POLICIES),
        rotate_wait=section.number("rotate_wait", 5.0, minimum=0),
        follow_symlinks=section.boolean("follow_symlinks", False),
        headers=headers_key(section, defaults["headers"]),
        batch_lines=section.integer("batch_lines", 1, minimum=1, maximum=MAX_BATCH_LINES),
        batch_bytes=section.integer("batch_bytes", 1 << 20, minimum=1, maximum=MAX_LINE_BYTES),
        compress=section.choice("compress", "none", COMPRESSIONS),
        **multiline_keys(section),
        include=regex_key(section, "include"),
        exclude=regex_key(section, "exclude"),
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
    problem = table_problem(value)
    if problem:
        raise section.error("arguments", problem)
    return tuple(sorted(value.items()))


def _max_line_bytes(section):
    value = section.integer("max_line_bytes", 1 << 20, minimum=1)
    if value > MAX_LINE_BYTES:
        raise section.error("max_line_bytes",
                            f"must be at most {MAX_LINE_BYTES} (128 MiB: RabbitMQ's default "
                            f"max_message_size; its hard limit is 512 MiB), got {value}")
    return value


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
