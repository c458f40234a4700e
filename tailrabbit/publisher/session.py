"""One connection to the broker: connect, declare the inputs' queues, open the publishing
channel, and read every incoming frame in one place.

Only the publisher greenlet writes to the socket. A second greenlet, owned by the session,
does nothing but read frames (acks, nacks, returns, connection.blocked, close, heartbeats)
and hand them to callbacks; a py-amqp connection is not safe for two writers (py-amqp#90)
but a gevent socket is fine with one reader and one writer. The reader also watches for a
silent peer: no frame for two heartbeat intervals means the broker is gone, even when the
TCP connection still looks open.

Each input publishes on a channel of its own. A channel-level error caused by one input's
lines (its exchange deleted: NOT_FOUND; a line over the broker's `max_message_size`:
PRECONDITION_FAILED) closes only that channel, so the other inputs' unconfirmed lines are
neither lost nor published twice. Rejected: one channel for all inputs (such an error then
dropped every input's channel, and everything unconfirmed went out again, repeatedly).
py-amqp answers a channel.close by writing close-ok and reopening the channel from the
reading greenlet; here the reader only records it and the publisher greenlet, the one
writer, sends the close-ok (a write from the reader could land inside a half-sent batch).
"""

import os
import socket
import ssl as ssl_module
import struct
import time
from functools import partial

import amqp
import gevent
from amqp import exceptions as amqp_errors
from amqp import spec
from gevent.event import Event

from tailrabbit import logevents

# What a lost, refused or broken connection can raise; anything else is a bug.
CONNECTION_ERRORS = (OSError, EOFError, gevent.Timeout, ssl_module.SSLError,
                     amqp_errors.AMQPError) + amqp.Connection.recoverable_connection_errors
# py-amqp's default TCP_USER_TIMEOUT of 1 s kills a connection the broker stops reading
# under flow control and silently loses what was written (FIELD-NOTES). Heartbeats detect
# a dead peer instead.
SOCKET_SETTINGS = {socket.TCP_USER_TIMEOUT: 0} if hasattr(socket, "TCP_USER_TIMEOUT") else {}


CLOSE_OK_FRAME = struct.Struct(">BHIHHB")     # method frame: channel.close-ok, no arguments


def connection_name():
    """Shown by `rabbitmqctl list_connections client_properties` and the management UI,
    so an operator can tell which shipper is on which node."""
    return f"tailrabbit {socket.gethostname()} pid {os.getpid()}"


class SessionLost(Exception):
    """The connection failed; the publisher reconnects and publishes unconfirmed lines."""


class DeclareFailed(Exception):
    def __init__(self, input_settings, error):
        self.input = input_settings
        self.error = error
        super().__init__(f"cannot declare queue {input_settings.queue!r} for input "
                         f"{input_settings.name!r}: {describe(error)}")


def describe(error):
    """A short, password-free description of a connection or channel error."""
    if isinstance(error, amqp_errors.AMQPError):
        return f"{error.reply_text or error.__class__.__name__} ({error.code})"
    if isinstance(error, gevent.Timeout):
        return "timed out"
    return str(error) or error.__class__.__name__


def ssl_options(broker, host):
    """py-amqp's TLS options: peer and hostname verified unless ssl_verify = False."""
    if not broker.ssl:
        return False
    options = {"ca_certs": broker.ssl_ca, "certfile": broker.ssl_cert,
               "keyfile": broker.ssl_key}
    if broker.ssl_verify:
        options.update(cert_reqs=ssl_module.CERT_REQUIRED, server_hostname=host)
    else:
        options.update(cert_reqs=ssl_module.CERT_NONE)
    return {key: value for key, value in options.items() if value is not None}


class Session:
    """A connected, declared, confirm-mode channel, or an exception from `open`."""

    def __init__(self, broker, host, port, callbacks):
        self.address = f"{host}:{port}"
        self.callbacks = callbacks
        self.blocked = False
        self.failed = Event()          # set once the connection is unusable
        self.error = None
        self._reader = None
        self.connection = amqp.Connection(
            host=self.address, userid=broker.user, password=broker.password,
            virtual_host=broker.vhost, heartbeat=broker.heartbeat,
            connect_timeout=broker.connect_timeout, socket_settings=SOCKET_SETTINGS,
            ssl=ssl_options(broker, host), on_blocked=self._on_blocked,
            on_unblocked=self._on_unblocked, client_properties={"product": "tailrabbit",
                                                           "connection_name": connection_name()})
        self.heartbeat = broker.heartbeat
        self.opened_at = None          # monotonic time the connection was made
        self.channels = {}             # input name -> id of its publishing channel
        self._close_oks = []           # ids of channels the broker closed, to answer

    def open(self, inputs, confirm, timeout):
        """Connect, declare, open a publishing channel per declared input; returns the
        inputs whose queues could not be declared (they get no channel).

        Every step that waits for the broker has `timeout`: nothing watches heartbeats
        before the reader greenlet starts (after this), and py-amqp sends none while it
        waits for a reply. A broker that took the handshake and then answered nothing (a
        hung node, a black-holed connection that still looks open) kept the publisher in
        the declare channel's open or close for good, silently (test_hang_session_open)."""
        with gevent.Timeout(timeout):
            self.connection.connect()
        self.opened_at = time.monotonic()
        self.heartbeat = self.connection.heartbeat
        failed = []
        with gevent.Timeout(timeout):
            declare_channel = self.connection.channel()
        for item in inputs:
            try:
                with gevent.Timeout(timeout):
                    self._declare(declare_channel, item)
            except amqp_errors.ChannelError as error:
                failed.append(DeclareFailed(item, error))
                with gevent.Timeout(timeout):     # the broker closed the old one
                    declare_channel = self.connection.channel()
        with gevent.Timeout(timeout):
            declare_channel.close()
        refused = {failure.input.name for failure in failed}
        for item in inputs:
            if item.name not in refused:
                with gevent.Timeout(timeout):
                    self._open_channel(item.name, confirm)
        return failed

    def _open_channel(self, name, confirm):
        channel = self.connection.channel()
        if confirm:
            channel.confirm_select()
            channel.events["basic_ack"].add(partial(self.callbacks.on_ack, name))
            channel.events["basic_nack"].add(partial(self.callbacks.on_nack, name))
        channel.events["basic_return"].add(partial(self.callbacks.on_return, name))
        channel._callbacks[spec.Channel.Close] = partial(self._on_channel_close, name,
                                                         channel)
        self.channels[name] = channel.channel_id

    def _on_channel_close(self, name, channel, reply_code, reply_text, class_id,
                          method_id):
        """The broker closed one input's channel (reader greenlet): no write here."""
        channel.is_open = False
        self._close_oks.append(channel.channel_id)
        self.channels.pop(name, None)
        error = amqp_errors.error_for_code(reply_code, reply_text, (class_id, method_id),
                                           amqp_errors.ChannelError)
        self.callbacks.on_channel_closed(name, error)

    def answer_closed_channels(self):
        """Send the close-ok of every channel the broker closed (publisher greenlet)."""
        if self._close_oks:
            ids, self._close_oks = self._close_oks, []
            self.write(b"".join(CLOSE_OK_FRAME.pack(1, channel_id, 4, 20, 41, 0xCE)
                                for channel_id in ids))

    @staticmethod
    def _declare(channel, item):
        channel.queue_declare(item.queue, durable=item.durable, auto_delete=item.auto_delete,
                              arguments=item.queue_arguments or None)
        if item.exchange:
            channel.queue_bind(item.queue, item.exchange, item.routing_key)

    @property
    def frame_max(self):
        return self.connection.frame_max

    def start_reader(self):
        self._reader = gevent.spawn(self._read_frames)

    def fail(self, reason):
        """Mark the connection unusable and wake the writer, even from a blocked sendall."""
        if self.failed.is_set():
            return
        self.error = reason
        self.failed.set()
        sock = getattr(self.connection._transport, "sock", None)   # None before connect
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _read_frames(self):
        limit = self.heartbeat * 2 + 1 if self.heartbeat else None
        blocking_read = self.connection.blocking_read
        try:
            while not self.failed.is_set():     # frames after a failure mean nothing
                if limit:
                    with gevent.Timeout(limit, SessionLost(
                            f"no frame from the broker in {limit} s (heartbeat missed)")):
                        blocking_read(None)
                else:
                    blocking_read(None)
        except gevent.GreenletExit:
            raise
        except SessionLost as error:
            self.fail(str(error))
        except CONNECTION_ERRORS as error:
            self.fail(describe(error))
        except Exception as error:      # e.g. py-amqp answering a close while we write
            logevents.connection_read_failed(address=self.address, reason=repr(error))
            self.fail(describe(error))

    def _on_blocked(self, reason):
        self.blocked = True
        self.callbacks.on_blocked(reason)

    def _on_unblocked(self):
        self.blocked = False
        self.callbacks.on_unblocked()

    def write(self, data):
        self.connection._transport.write(data)
        self.connection.bytes_sent += 1

    def send_heartbeat(self):
        self.connection.send_heartbeat()

    def close(self, timeout=2.0):
        """Close politely if the connection still works, else just drop the socket."""
        if self._reader is not None:
            self._reader.kill()
        try:
            with gevent.Timeout(timeout, False):    # False: a timeout just ends the block
                self.connection.close()
        except Exception:          # closing a broken connection: nothing left to save
            pass
        try:
            self.connection.collect()
        except Exception:
            pass
