"""`--check`'s broker probe (publisher/probe.py): the daemon's connection settings, hosts
in failover order, the first login accepted ends it, failures are reported, not raised."""

import socket
import types

import pytest

from tailrabbit.publisher import probe as probe_module
from tailrabbit.publisher.session import SOCKET_SETTINGS


def broker(hosts, **extra):
    settings = dict(hosts=hosts, user="u", password="s3cret", vhost="/v", connect_timeout=3,
                    ssl=False, ssl_ca=None, ssl_cert=None, ssl_key=None, ssl_verify=True)
    settings.update(extra)
    return types.SimpleNamespace(**settings)


class FakeConnection:
    """amqp.Connection as far as the probe uses it; `refuse` maps host -> error."""
    made, refuse = [], {}

    def __init__(self, **kwargs):
        self.kwargs, self.closed = kwargs, False
        self.server_properties = {"product": "RabbitMQ", "version": "3.13.7"}
        FakeConnection.made.append(self)

    def connect(self):
        error = self.refuse.get(self.kwargs["host"])
        if error is not None:
            raise error

    def close(self):
        self.closed = True


@pytest.fixture
def fake(monkeypatch):
    FakeConnection.made, FakeConnection.refuse = [], {}
    monkeypatch.setattr(probe_module.amqp, "Connection", FakeConnection)
    return FakeConnection


def test_hosts_are_tried_in_order_until_one_accepts(fake):
    fake.refuse = {"a:5672": ConnectionRefusedError(111, "Connection refused")}
    answers = list(probe_module.probe(broker([("a", 5672), ("b", 5673), ("c", 5672)])))
    assert [(a.host, a.port, a.accepted) for a in answers] == [("a", 5672, False),
                                                              ("b", 5673, True)]
    assert answers[0].problem == "[Errno 111] Connection refused"
    assert answers[1].server == "RabbitMQ 3.13.7"
    assert [c.kwargs["host"] for c in fake.made] == ["a:5672", "b:5673"]
    assert fake.made[1].closed


def test_the_daemons_connection_settings_are_used(fake):
    list(probe_module.probe(broker([("rabbit", 5671)], ssl=True, ssl_ca="/ca.pem")))
    kwargs = fake.made[0].kwargs
    assert kwargs["socket_settings"] == SOCKET_SETTINGS          # TCP_USER_TIMEOUT 0
    assert kwargs["connect_timeout"] == 3
    assert (kwargs["userid"], kwargs["password"], kwargs["virtual_host"]) == \
        ("u", "s3cret", "/v")
    assert kwargs["ssl"]["ca_certs"] == "/ca.pem"
    assert kwargs["ssl"]["server_hostname"] == "rabbit"          # hostname verified
    assert kwargs["client_properties"]["connection_name"].endswith(" --check")


def test_no_host_answering_yields_only_refusals(fake):
    fake.refuse = {"a:1": OSError("down"), "b:2": TimeoutError()}
    answers = list(probe_module.probe(broker([("a", 1), ("b", 2)])))
    assert [(a.accepted, a.problem) for a in answers] == [(False, "down"),
                                                         (False, "TimeoutError")]


def test_a_failing_close_after_an_accepted_login_is_still_accepted(fake, monkeypatch):
    def close(self):
        raise OSError("reset")
    monkeypatch.setattr(FakeConnection, "close", close)
    [answer] = probe_module.probe(broker([("a", 5672)]))
    assert answer.accepted


def test_a_real_port_where_nothing_listens():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [answer] = probe_module.probe(broker([("127.0.0.1", port)], connect_timeout=2))
    assert not answer.accepted and "s3cret" not in answer.problem
