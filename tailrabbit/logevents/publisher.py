"""Events of the broker connection and the publish loop (tailrabbit/publisher/).

`address` is one broker as host:port; `reason` a short, password-free description.
"""

from tailrabbit.logevents.event import DEBUG, ERROR, INFO, WARNING, Event

LOGGER = "tailrabbit.publisher"

connected = Event(
    "connected", INFO, "connected to {address} (confirms {confirms})",
    "address confirms", LOGGER)
connect_failed = Event(
    "connect_failed", WARNING, "cannot connect to {address}: {reason}",
    "address reason", LOGGER)
# Bad credentials, vhost or certificate: a config problem, not a blip.
connect_refused = Event(
    "connect_refused", ERROR, "cannot connect to {address}: {reason}",
    "address reason", LOGGER)
no_broker_answered = Event(
    "no_broker_answered", WARNING,
    "no broker answered ({addresses}); retrying in {delay:.1f} s",
    "addresses delay", LOGGER)
no_broker_accepted = Event(
    "no_broker_accepted", WARNING,
    "no broker accepted the connection ({addresses}); retrying in {delay:.1f} s",
    "addresses delay", LOGGER)
connection_lost = Event(
    "connection_lost", WARNING,
    "connection to {address} lost: {reason}; {count} lines to publish again",
    "address reason count", LOGGER)
hosts_all_dropped = Event(
    "hosts_all_dropped", WARNING,
    "every broker dropped the connection lately ({addresses}); retrying in {delay:.1f} s",
    "addresses delay", LOGGER)
connection_read_failed = Event(
    "connection_read_failed", WARNING, "reading from {address} failed: {reason}",
    "address reason", LOGGER)
connection_blocked = Event(
    "connection_blocked", WARNING,
    "the broker blocked publishing ({reason}); lines wait in the buffer",
    "reason", LOGGER)
connection_unblocked = Event(
    "connection_unblocked", WARNING, "the broker unblocked publishing", (), LOGGER)
input_parked = Event(
    "input_parked", ERROR,
    "input {input} parked: {reason}; its lines wait ({count} unconfirmed lines set "
    "aside), retrying in {delay:.1f} s",
    "input reason count delay", LOGGER)
reconnect_for_reload = Event(
    "reconnect_for_reload", INFO, "reload: {reason}; reconnecting to apply it",
    "reason", LOGGER)
planned_reconnect = Event(
    "planned_reconnect", DEBUG, "planned reconnect ({reason}) of {address}",
    "reason address", LOGGER)
planned_reconnect_unconfirmed = Event(
    "planned_reconnect_unconfirmed", WARNING,
    "planned reconnect ({reason}): {count} lines still unconfirmed after {seconds:.0f} s, "
    "they will be published again",
    "reason count seconds", LOGGER)
