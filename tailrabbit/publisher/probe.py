"""`--check`'s broker probe: log in to each host in turn, as the daemon would, and say
what answered.

It lives in publisher/ because only this package talks AMQP (py-amqp stays out of the rest
of the code). The connection is made with the session's own settings (session.py: TLS
options, connect timeout, TCP_USER_TIMEOUT 0, the connection name) so that a probe that
passes means the daemon's connection would pass too; it only logs in, declares nothing and
closes at once. Rejected: opening a Session, which also declares the queues (a check must
not create queues on a production broker) and needs gevent's reader greenlet.
"""

from typing import NamedTuple, Optional

import amqp

from tailrabbit.publisher.session import (SOCKET_SETTINGS, connection_name, describe,
                                          ssl_options)


class Answer(NamedTuple):
    """One host's answer: `server` (its product and version) when the login was
    accepted, else `problem` (password-free, as the daemon logs it)."""
    host: str
    port: int
    server: Optional[str] = None
    problem: Optional[str] = None

    @property
    def accepted(self):
        return self.server is not None


def probe(broker):
    """Try `broker.hosts` in order (the daemon's failover order); yields an Answer per
    host tried and stops after the first that accepted the login."""
    for host, port in broker.hosts:
        answer = login(broker, host, port)
        yield answer
        if answer.accepted:
            return


def login(broker, host, port):
    connection = amqp.Connection(
        host=f"{host}:{port}", userid=broker.user, password=broker.password,
        virtual_host=broker.vhost, connect_timeout=broker.connect_timeout,
        socket_settings=SOCKET_SETTINGS, ssl=ssl_options(broker, host),
        client_properties={"product": "tailrabbit",
                           "connection_name": connection_name() + " --check"})
    try:
        connection.connect()
    except Exception as error:     # any failure is a finding to report, not a crash
        return Answer(host, port, problem=describe(error))
    try:
        properties = connection.server_properties or {}
        return Answer(host, port, server=f"{properties.get('product', '?')} "
                                         f"{properties.get('version', '?')}")
    finally:
        try:
            connection.close()
        except Exception:          # the login was the finding; a failed close is not
            pass

