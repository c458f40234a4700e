"""The [logging] section -> LoggingSettings, refused at load when it cannot format a
record (with config.py, the only readers of the INI text; split from config.py by size)."""

from tailrabbit.logsetup import STYLES, format_problem
from tailrabbit.settings import LOG_LEVELS, LoggingSettings

LOGGING_KEYS = {"level", "log_format", "log_datefmt", "style"}


def logging_settings(section):
    section.check_keys(LOGGING_KEYS)
    level = section.string("level", "INFO")
    settings = LoggingSettings(
        level=parse_level(level, lambda problem: section.error("level", problem)),
        format=section.string("log_format", LoggingSettings.format),
        datefmt=section.string("log_datefmt", LoggingSettings.datefmt),
        style=section.choice("style", LoggingSettings.style, STYLES),
    )
    # Judged apart, so the line names the key at fault: the format with the default
    # time format, then the time format alone.
    problem = format_problem(settings.format, None)
    if problem:
        raise section.error("log_format", f"cannot format a log record ({problem}); "
                                          f"write fields as %%(message)s")
    problem = format_problem("%(asctime)s", settings.datefmt)
    if problem:
        raise section.error("log_datefmt", f"cannot format a time ({problem}); write "
                                           f"fields as %%Y-%%m-%%d %%H:%%M:%%S")
    return settings


def parse_level(text, error):
    """A level name (DEBUG, INFO, ...) or a number such as the seed's `-l 30`."""
    text = str(text).strip()
    if text.isdigit():
        return text
    if text.upper() not in LOG_LEVELS:
        raise error(f"must be one of {', '.join(LOG_LEVELS)} or a number, got {text!r}")
    return text.upper()
