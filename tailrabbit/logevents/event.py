"""One operator-visible event: a stable name, a fixed level, declared fields, its text.

After Vector's internal_events (`emit!(FileRotated { .. })`): the code that notices a
fact calls the event with its fields (`logevents.file_rotated(input=..., path=...)`) and
carries no log string; the event decides level, wording and rate limit. Emitting logs
through the std logging module, so pytest's caplog, the text format and the JSON style
all see it: the LogRecord carries `event` (the name) and `fields` (a dict), and its
message is the text operators and tests have always matched, byte for byte.

The text is a str.format template over the fields (or a function of them, where the
wording depends on a value). An event with an `input` field whose template does not
name it is prefixed `input NAME: `: the prefix every input's line had by hand.

Rejected: positional arguments (a swapped pair of paths is silent; fields by name are
checked against the declaration, so a typo fails in the first test that emits it), and
one logger per event (the loggers stay the modules' as before, so nothing that filters
by logger name changes).
"""

import logging

from tailrabbit.logsetup import WARN_EVERY, RateLimit, suppressed_suffix

DEBUG, INFO, WARNING, ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR

# Keys of the JSON object that fields must not shadow; `suppressed` is added by the
# rate limit (how many occurrences the line stands for besides itself).
RESERVED = {"ts", "level", "event", "message", "logger", "exception", "stack",
            "suppressed"}
MAX_LIMIT_KEYS = 1000       # rate-limit states per event (one per input, in practice)

EVENTS = {}                 # name -> Event, in declaration order


class Event:
    def __init__(self, name, level, text, fields=(), logger="tailrabbit", limit_by=None,
                 every=WARN_EVERY, prefix=None):
        """`fields`: names, a tuple or a space-separated string. `limit_by`: None (every
        occurrence is logged) or the fields whose values key the rate limit: the first
        occurrence at once, then at most one per `every` seconds, noting how many were
        suppressed. `prefix`: None decides by the rule above (True for a `text` function
        of an event with an input field)."""
        fields = tuple(fields.split()) if isinstance(fields, str) else tuple(fields)
        if name in EVENTS:
            raise ValueError(f"event {name!r} declared twice")
        if RESERVED & set(fields):
            raise ValueError(f"event {name!r}: fields {sorted(RESERVED & set(fields))} "
                             f"are reserved")
        if limit_by is not None and not set(limit_by) <= set(fields):
            raise ValueError(f"event {name!r}: limit_by names undeclared fields")
        self.name, self.level, self.text, self.fields = name, level, text, fields
        self.logger = logging.getLogger(logger)
        self.limit_by, self.every = limit_by, every
        if prefix is None:
            prefix = "input" in fields and (callable(text) or "{input" not in text)
        self.prefix = prefix
        self._names = frozenset(fields)
        self._limits = {}
        EVENTS[name] = self

    def __repr__(self):
        return f"<Event {self.name} {logging.getLevelName(self.level)}>"

    def __call__(self, **fields):
        """Log this event (if its level is enabled, and the rate limit lets it)."""
        if fields.keys() != self._names:
            raise TypeError(f"event {self.name} takes fields {sorted(self._names)}, "
                            f"got {sorted(fields)}")
        logger = self.logger
        if not logger.isEnabledFor(self.level):
            return
        suppressed = 0
        if self.limit_by is not None:
            suppressed = self._limit(fields).passes()
            if suppressed is None:
                return
        message = self.render(fields)
        if suppressed:
            message += suppressed_suffix(suppressed)
            fields["suppressed"] = suppressed
        # stacklevel: %(funcName)s and %(lineno)d name the code that noticed the fact
        logger.log(self.level, message, extra={"event": self.name, "fields": fields},
                   stacklevel=2)

    def render(self, fields):
        """The message text of this event with these fields."""
        text = self.text(fields) if callable(self.text) else self.text.format(**fields)
        return f"input {fields['input']}: {text}" if self.prefix else text

    def _limit(self, fields):
        key = tuple(fields[name] for name in self.limit_by)
        limit = self._limits.get(key)
        if limit is None:
            if len(self._limits) >= MAX_LIMIT_KEYS:
                self._limits.clear()
            limit = self._limits[key] = RateLimit(self.every)
        return limit


def reset_limits():
    """Forget every rate limit's state (tests)."""
    for event in EVENTS.values():
        event._limits.clear()
