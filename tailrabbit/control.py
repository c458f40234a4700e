"""The control loop's plumbing: the message queue signals feed, and the exceptions that
end the process with an exit status."""

from collections import deque

from gevent.event import Event


class StartupError(Exception):
    """A setting that parsed but cannot be applied (a port in use): exits.CONFIG (78),
    one line."""


class Halt(BaseException):
    """Stop the process with `status` (an exits.* name, never a bare number); a
    BaseException so no `except Exception` eats it."""

    def __init__(self, status, reason=""):
        super().__init__(status, reason)
        self.status, self.reason = status, reason


class ControlQueue:
    """Messages for the control loop; `ready` is an Event, so it can be waited on together
    with others (gevent's Queue cannot)."""

    def __init__(self):
        self._messages = deque()
        self.ready = Event()

    def put(self, message):
        self._messages.append(message)
        self.ready.set()

    def get(self, timeout=None):
        """The oldest message, or None after `timeout`."""
        while not self._messages:
            self.ready.clear()
            if not self.ready.wait(timeout):
                return None
        return self._messages.popleft()
