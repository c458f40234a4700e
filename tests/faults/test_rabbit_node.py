"""Smoke test of PrivateNode: a persistent message survives kill -9 + restart, stop_app /
start_app work, and the shared node on 5672 is left alone."""

import shutil
import socket

import amqp
import pytest

from faults.rabbit_node import PrivateNode

pytestmark = pytest.mark.skipif(shutil.which("rabbitmq-server") is None,
                                reason="rabbitmq-server is not installed (not on PATH)")


def connect(address):
    connection = amqp.Connection(address)
    connection.connect()
    return connection


def test_private_node_survives_kill_and_restart(tmp_path):
    with PrivateNode(tmp_path / "node") as node:
        assert node.port != 5672
        connection = connect(node.address)
        channel = connection.channel()
        channel.queue_declare("smoke", durable=True, auto_delete=False)
        # Confirmed: the broker has written it, so losing it to kill -9 would be a bug.
        channel.basic_publish_confirm(amqp.Message(b"survivor", delivery_mode=2),
                                      routing_key="smoke", confirm_timeout=10)
        node.kill()
        with pytest.raises((OSError, amqp.exceptions.ConnectionError)):
            connect(node.address)
        node.start()

        connection = connect(node.address)
        message = connection.channel().basic_get("smoke", no_ack=True)
        assert message is not None and message.body == b"survivor"
        connection.close()

        node.stop_app()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", node.port), timeout=2).close()
        node.start_app()
        connection = connect(node.address)
        assert connection.channel().queue_declare("smoke", passive=True).message_count == 0
        connection.close()
        assert "tr-fault-" in node.ctl("eval", "node().")
    assert node.pid is None
    node.cleanup()                       # idempotent
    socket.create_connection(("127.0.0.1", 5672), timeout=5).close()   # shared node is up
