"""Join lines into events: a Python traceback or a Java stack trace is one message, not 30.

A line either starts a new event or continues the current one. Who decides:
  - `multiline_start = REGEX`: a line that matches (at its start) starts an event;
  - `multiline = python | java`: a small state machine per preset that knows tracebacks
    (below), for logs whose records do not all start alike.
An event is its lines joined by "\\n", bytes exact (blank lines inside kept); its offset is
its first line's. The joiner holds the current event until the next start line shows it is
complete, or it is flushed: after `multiline_timeout` without a new line, at a pipe
writer's close or stdin's EOF, when its file ends (rotation). An event longer than
`multiline_max_lines` lines or `max_line_bytes` bytes is cut into events at line
boundaries; every piece but the last is flagged truncated (the event goes on).

Why a checkpoint never falls inside an event: the joiner reports `pending_offset`, the first
byte of the event it holds, and a file batch's end offset is that (not the bytes read), so
a restart reads the whole event again (Filebeat's and Vector's readers do the same).
"""

import re

# Python: what continues a record (logging's `logger.exception` prints the traceback after
# the message line). The exception line after the frames is the only unindented line
# that continues it; chained tracebacks repeat the pattern after a marker and blank lines.
_PY_TRACEBACK = b"Traceback (most recent call last):"
_PY_CHAIN = (b"During handling of the above exception, another exception occurred:",
             b"The above exception was the direct cause of the following exception:")
_NORMAL, _IN_TRACEBACK, _AFTER_EXCEPTION = range(3)


class PythonStarts:
    """`multiline = python`: is this line the start of a new record?"""

    def __init__(self):
        self.state = _NORMAL

    def __call__(self, line):
        if line.startswith(_PY_TRACEBACK) or line.startswith(b"Exception Group Traceback"):
            self.state = _IN_TRACEBACK
            return False
        if not line or line[:1] in b" \t":
            return False                 # a frame, a source line, a blank line
        if line in _PY_CHAIN:
            self.state = _AFTER_EXCEPTION
            return False
        if self.state == _IN_TRACEBACK:  # the exception line that ends the frames
            self.state = _AFTER_EXCEPTION
            return False
        self.state = _NORMAL
        return True


# Java (logback, log4j): frames are indented; "Caused by:", "Suppressed:" and "... N more"
# continue; so does the exception line right after the log line ("java.io.IOException: x",
# "Exception in thread "main" ..."): a dotted class name whose last part names a failure.
_JAVA_CONTINUES = re.compile(
    rb"[ \t]|Caused by:|Suppressed:|\.\.\. \d+ (?:more|common frames omitted)"
    rb"|Exception in thread \""
    rb"|(?:[A-Za-z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable|Failure)[\w$]*(?::|$)")


def java_starts(line):
    """`multiline = java`: is this line the start of a new record?"""
    return bool(line) and _JAVA_CONTINUES.match(line) is None


PRESETS = {"python": PythonStarts, "java": lambda: java_starts}


def start_detector(settings):
    """The input's start test (a callable on a line's bytes), or None without multiline."""
    if settings.multiline_start is not None:
        match = re.compile(settings.multiline_start.encode("utf-8")).match
        return lambda line: match(line) is not None
    if settings.multiline is not None:
        return PRESETS[settings.multiline]()
    return None


class EventJoiner:
    """Lines in, complete events out; holds the event not yet known to be complete."""

    def __init__(self, is_start, max_lines, max_bytes):
        self.is_start = is_start
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._lines = []                 # the held event's lines
        self._bytes = -1                 # its size joined ("\n" between lines)
        self._offset = None              # its first line's offset (None: not known)
        self._truncated = False          # a line of it was cut at max_line_bytes

    @property
    def holds(self):
        return bool(self._lines)

    @property
    def pending_offset(self):
        """Offset of the held event's first byte (None when nothing is held)."""
        return self._offset if self._lines else None

    def feed(self, lines, offsets=None, truncated=None, final=False):
        """Complete events of `lines`: (events, their offsets or None, truncated indexes
        or None). Blank lines with no event before them are skipped (nothing to join).
        `final`: the stream ended or went quiet, the event held is complete too."""
        events, starts, cut = [], [] if offsets is not None else None, set()
        is_start = self.is_start
        for index, line in enumerate(lines):
            if self._lines:
                if is_start(line):
                    self._emit(events, starts, cut, cut_short=False)
                elif (len(self._lines) >= self.max_lines
                      or self._bytes + 1 + len(line) > self.max_bytes):
                    self._emit(events, starts, cut, cut_short=True)   # too long: cut here
            else:
                is_start(line)           # the presets keep state: let them see it
                if not line:
                    continue
            if not self._lines:
                self._offset = offsets[index] if offsets is not None else None
                self._bytes = -1
            self._lines.append(line)
            self._bytes += len(line) + 1
            if truncated and index in truncated:
                self._truncated = True
        if final and self._lines:
            self._emit(events, starts, cut, cut_short=False)
        return events, starts, cut or None

    def take_lines(self):
        """The held event's lines, no longer held (Framer.take_back)."""
        lines, self._lines, self._truncated = self._lines, [], False
        return lines

    def flush(self):
        """The held event as a finished one (the stream ended or went quiet)."""
        return self.feed([], [] if self._offset is not None else None, final=True)

    def _emit(self, events, starts, cut, cut_short):
        if cut_short or self._truncated:
            cut.add(len(events))
        events.append(b"\n".join(self._lines))
        if starts is not None:
            starts.append(self._offset)
        self._lines = []
        self._truncated = False
