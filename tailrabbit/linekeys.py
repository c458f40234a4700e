"""The input keys that shape lines into messages: multiline (joining lines into events),
include/exclude, and which metadata headers a message carries. Regular expressions are compiled here, at load, so a typo exits 78
with its file, section and key instead of failing at the first line read."""

import re

from tailrabbit.settings import HEADER_NAMES, MULTILINE_PRESETS

MAX_EVENT_LINES = 100000


def regex_key(section, key):
    """A regular expression, checked now: a typo must not fail at the first line."""
    text = section.raw(key)
    if text is None:
        return None
    if not text.strip():
        raise section.error(key, "is empty: give a regular expression, or remove the key")
    try:
        re.compile(text.encode("utf-8"))
    except re.error as exc:
        raise section.error(key, f"is not a valid regular expression: {exc}") from None
    return text


def multiline_keys(section):
    start = regex_key(section, "multiline_start")
    preset = section.choice("multiline", None, MULTILINE_PRESETS)
    if start is not None and preset is not None:
        raise section.error("multiline", "and multiline_start exclude each other: a preset "
                                         "(python, java) or your own start regex")
    if start is None and preset is None:
        for key in ("multiline_max_lines", "multiline_timeout"):
            if key in section:
                raise section.error(key, "applies only with multiline or multiline_start")
    return {"multiline_start": start, "multiline": preset,
            "multiline_max_lines": section.integer("multiline_max_lines", 500, minimum=1,
                                                   maximum=MAX_EVENT_LINES),
            "multiline_timeout": section.number("multiline_timeout", 1.0, minimum=0.01)}


def headers_key(section, default):
    """`headers = input, host` -> ("input", "host"); given empty -> () (no table at all)."""
    text = section.raw("headers")
    if text is None:
        return default
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",")
                                if part.strip()))
    for name in names:
        if name not in HEADER_NAMES:
            raise section.error("headers", f"unknown header {name!r}: choose from "
                                           f"{', '.join(HEADER_NAMES)} (empty = none)")
    return names

