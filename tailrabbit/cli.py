"""tailrabbit - ship log lines from FIFOs, stdin and log files into RabbitMQ.

Usage:
  tailrabbit (-c FILE | --config=FILE) [-l LEVEL | --log-level=LEVEL]
  tailrabbit --check (-c FILE | --config=FILE)
  tailrabbit (-m | --make-config)
  tailrabbit (-h | --help)
  tailrabbit --version

Options:
  -c FILE, --config=FILE      The INI config file.
  -l LEVEL, --log-level=LEVEL Log level: DEBUG, INFO, WARNING, ERROR or a number (30).
  --check                     Validate the config, try the broker, exit.
  -m, --make-config           Print a commented sample config to stdout.
  -h, --help                  Show this help.
  --version                   Show the version.

Exit codes: 0 clean stop, 1 unexpected failure, 69 (--check) no broker answered,
78 bad config or arguments.
"""

import sys

from tailrabbit import exits


def main(argv=None):
    from tailrabbit import early_signals
    early_signals.install()        # first: imports and the config load take a while
    from docopt import DocoptExit, docopt

    from tailrabbit import __version__
    from tailrabbit import config as config_module

    argv = sys.argv[1:] if argv is None else argv
    try:
        args = docopt(__doc__, argv=argv, default_help=False)
    except DocoptExit:
        print("tailrabbit: bad arguments: %s (see tailrabbit --help)" % " ".join(argv),
              file=sys.stderr)
        return exits.CONFIG
    if args["--help"]:
        print(__doc__.strip())
        return exits.OK
    if args["--version"]:
        print(f"tailrabbit {__version__}")
        return exits.OK
    if args["--make-config"]:
        from tailrabbit.sample import SAMPLE_CONFIG
        sys.stdout.write(SAMPLE_CONFIG)
        return exits.OK
    try:
        settings = config_module.load(args["--config"])
        level = settings.logging.level
        if args["--log-level"] is not None:
            level = config_module.parse_level(
                args["--log-level"],
                lambda problem: config_module.ConfigError("command line", None,
                                                          "--log-level", problem))
    except config_module.ConfigError as error:
        print(f"tailrabbit: {error}", file=sys.stderr)
        return exits.CONFIG
    if args["--check"]:
        early_signals.uninstall()  # a one-shot command: signals act as usual
        from tailrabbit.check import check
        for warning in settings.warnings:
            print(f"warning: {warning}")
        return check(settings)
    return run(settings, level)


def run(settings, level):
    # Sockets only: watchdog's observer must stay a real OS thread (watchdog#306), and
    # everything else of ours uses gevent's APIs explicitly.
    from gevent import monkey
    monkey.patch_socket()
    monkey.patch_ssl()

    from tailrabbit import logevents
    from tailrabbit.daemon import Daemon, StartupError
    from tailrabbit.logsetup import setup_logging

    setup_logging(settings.logging, level)
    for warning in settings.warnings:
        logevents.config_warning(reason=warning)
    daemon = Daemon(settings)
    try:
        daemon.start()
    except StartupError as error:
        startup_failed(settings, error)
        return exits.CONFIG
    return daemon.run()


def startup_failed(settings, error):
    """The one stderr line of exit 78 once logging is set up: bare in the text style (the
    same line --check and a config error print), a JSON event in the json style, where a
    bare line would break a reader that parses every line. Bare too when the log level
    hides errors: exit 78 always says why."""
    from tailrabbit import logevents
    event = logevents.startup_failed
    if settings.logging.style == "json" and event.logger.isEnabledFor(event.level):
        event(reason=str(error))
    else:
        print(f"tailrabbit: {error}", file=sys.stderr)
