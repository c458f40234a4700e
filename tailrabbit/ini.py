"""Typed getters over one INI section, whose errors name file, section and key."""

import configparser
import math

# Seconds keys are at most a year: larger values overflow socket timeouts (time_t) and
# are typos (milliseconds written as seconds); `refresh = None` is how to say "never".
MAX_SECONDS = 365 * 24 * 3600


class ConfigError(Exception):
    """A bad config value. The parts stay apart (`path`, `section` and `key`, the last two
    None when they do not apply, and `problem`) for callers that need them: a structured
    log event, a test. str() joins them into the one line the CLI prints on stderr,
    `PATH: [SECTION] KEY: PROBLEM`; tests and operators' scripts match that line, so its
    wording does not change."""

    def __init__(self, path, section, key, problem):
        super().__init__(path, section, key, problem)   # args: so it pickles and copies
        self.path, self.section, self.key, self.problem = path, section, key, problem

    def __str__(self):
        where = self.path
        if self.section:
            where += f": [{self.section}]"
        if self.key:
            where += f" {self.key}"
        return f"{where}: {self.problem}"


class Section:
    """Typed getters over one INI section that name file, section and key in errors."""

    def __init__(self, path, parser, name):
        self.path, self.name = path, name
        self._items = parser[name] if parser.has_section(name) else {}

    def error(self, key, problem):
        return ConfigError(self.path, self.name, key, problem)

    def check_keys(self, allowed):
        for key in self._items:
            if key not in allowed:
                raise self.error(key, "unknown key")

    def __contains__(self, key):
        return key in self._items

    def raw(self, key, default=None):
        try:
            value = self._items.get(key) if self._items else None
        except (configparser.Error, ValueError) as exc:
            raise self.error(key, f"bad interpolation ({exc.__class__.__name__}); "
                                  f"write a literal %% as %%%%") from None
        return default if value is None else value.strip()

    def string(self, key, default=None):
        return self.raw(key, default)

    def integer(self, key, default, minimum=None, maximum=None):
        value = self.raw(key)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise self.error(key, f"must be a whole number, got {value!r}") from None
        return self._bounded(key, number, minimum, maximum)

    def number(self, key, default, minimum=None, maximum=None, none_ok=False):
        value = self.raw(key)
        if value is None or value == "":
            return default
        if none_ok and value.lower() in ("none", "off", "0"):
            return None
        try:
            number = float(value)
        except ValueError:
            raise self.error(key, f"must be a number of seconds, got {value!r}") from None
        # nan compares false with every bound, so it would pass them all: a
        # shutdown_timeout of nan never ends a SIGTERM.
        if not math.isfinite(number):
            raise self.error(key, f"must be a finite number of seconds, got {value!r}")
        if number > MAX_SECONDS:
            raise self.error(key, f"must be at most {MAX_SECONDS} seconds (a year), "
                                  f"got {value!r}")
        return self._bounded(key, number, minimum, maximum)

    def _bounded(self, key, number, minimum, maximum):
        if minimum is not None and number < minimum:
            raise self.error(key, f"must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise self.error(key, f"must be at most {maximum}, got {number}")
        return number

    def boolean(self, key, default):
        value = self.raw(key)
        if value is None or value == "":
            return default
        lowered = value.lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise self.error(key, f"must be True or False (yes/no, 1/0), got {value!r}")

    def choice(self, key, default, choices):
        value = self.raw(key)
        if value is None or value == "":
            return default
        if value.lower() not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value.lower()
