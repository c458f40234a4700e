"""Every operator-visible log event, by name: `logevents.file_rotated(input=..., path=...)`.

The catalog is split by the part of tailrabbit that emits (publisher, inputs, files,
checkpoints, spool, process); each module declares its events with Event (event.py),
and this package exposes them all under their names. `EVENTS` maps every name to its
Event, in declaration order (the README's list, the unit tests). The JSON style
(logsetup.py) prints the name as `event` and the fields beside it; a record that is not
an event is the generic event `log`.
"""

from tailrabbit.logevents.event import EVENTS, Event, reset_limits
from tailrabbit.logevents import checkpoints, files, inputs, process, publisher, spool

for _module in (publisher, inputs, files, checkpoints, spool, process):
    for _name, _value in vars(_module).items():
        if isinstance(_value, Event):
            if _name != _value.name:        # grep finds an event by its name
                raise ImportError(f"{_module.__name__}.{_name} is {_value.name!r}")
            globals()[_name] = _value
del _module, _name, _value

__all__ = ["EVENTS", "Event", "reset_limits", *EVENTS]
