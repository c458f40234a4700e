"""The publisher greenlet: buffer -> encoded frames -> broker, pipelined confirms, reconnects.

One greenlet, the only writer of the socket, runs `run()` for the life of the process:
connect (each host in turn, backoff with jitter between rounds), publish again whatever was
not confirmed on the previous connection, in order, then take batches from the buffer and
write them, as many as are ready per `sendall` and flushing as soon as the buffer runs dry
(batching for throughput, never waiting for a batch to fill for latency).

A batch counts as delivered only when the broker confirmed every line of it; until then it
stays in the ConfirmTracker and is published again after a failure (at-least-once). A
planned reconnect (`refresh`) stops taking lines and waits for every confirm first, so it
neither loses nor repeats a line.
"""

import logging
import random
import ssl
import time

import gevent
from amqp.exceptions import AccessRefused
from gevent.event import Event

from tailrabbit.publisher.confirms import ConfirmTracker
from tailrabbit.publisher.frames import RouteEncoder
from tailrabbit.publisher.session import (CONNECTION_ERRORS, Session, SessionLost,
                                          describe)

log = logging.getLogger("tailrabbit.publisher")

CONFIRM_WINDOW = 50000        # lines published and not yet confirmed, at most
LINES_PER_WRITE = 512         # lines taken from the buffer for one sendall, about
REFRESH_CONFIRM_WAIT = 30.0   # a planned reconnect waits this long for outstanding confirms
BACKOFF_FIRST, BACKOFF_CAP = 0.5, 30.0
BACKOFF_RESET_AFTER = 10.0    # a connection that lived this long resets the backoff
DECLARE_RETRY_FIRST, DECLARE_RETRY_CAP = 5.0, 60.0


class Backoff:
    """Capped exponential backoff with jitter (so many tailrabbits do not reconnect in step)."""

    def __init__(self, first, cap):
        self.first, self.cap = first, cap
        self.current = first

    def next(self):
        delay = self.current * random.uniform(0.5, 1.0)
        self.current = min(self.current * 2, self.cap)
        return delay

    def reset(self):
        self.current = self.first


class Publisher:
    def __init__(self, broker, inputs, buffer, stats, on_confirmed=None):
        self.broker = broker
        self.inputs = {item.name: item for item in inputs}
        self._retired = {}              # removed by a reload, lines may still be pending
        self._reconnect_now = False
        self.buffer = buffer
        self.stats = stats
        self.on_confirmed = on_confirmed
        self.progress = Event()         # set whenever lines were confirmed (for waiters)
        self._resend = []               # batches to publish first on the next connection
        self._tracker = ConfirmTracker()
        self._acked = Event()
        self._unblocked = Event()
        self._parked = {}               # input name -> DeclareFailed, lines held back
        self._declare_backoff = Backoff(DECLARE_RETRY_FIRST, DECLARE_RETRY_CAP)
        self._session = None
        self._last_write = 0.0

    def update(self, broker, inputs):
        """A reload: new broker settings and routes apply from a planned reconnect (which
        loses and repeats nothing); routes of removed inputs stay while lines of theirs
        are buffered or unconfirmed."""
        new = {item.name: item for item in inputs}
        for name, item in self.inputs.items():
            if name not in new:
                self._retired[name] = item
        self.broker, self.inputs = broker, new
        self._reconnect_now = True
        self.buffer.readable.set()          # wake the loop to notice

    def _routes(self):
        pending = {b.input for b in self._resend} | {
            b.input for b in self._tracker.batches()}
        self._retired = {name: item for name, item in self._retired.items()
                         if name not in self.inputs
                         and (name in pending or self.buffer.held(name))}
        return {**self._retired, **self.inputs}

    def take_unconfirmed(self):
        """After run() was killed: every batch not confirmed, oldest first, forgotten."""
        batches = self._tracker.take_all() + self._resend
        self._resend = []
        return batches

    # ---- lifecycle -------------------------------------------------------------------

    def run(self):
        backoff = Backoff(BACKOFF_FIRST, BACKOFF_CAP)
        while True:
            session = self._connect()
            if session is None:
                self.stats.connection_state = "disconnected"
                delay = backoff.next()
                log.warning("no broker answered (%s); retrying in %.1f s",
                            ", ".join(f"{h}:{p}" for h, p in self.broker.hosts), delay)
                gevent.sleep(delay)
                continue
            started = time.monotonic()
            try:
                self._serve(session)
            except SessionLost as error:
                log.warning("connection to %s lost: %s; %d lines to publish again",
                            session.address, error, self._tracker.outstanding)
                if time.monotonic() - started >= BACKOFF_RESET_AFTER:
                    backoff.reset()
                gevent.sleep(backoff.next())
            finally:
                self._resend = self._tracker.take_all() + self._resend
                self._tracker = ConfirmTracker()
                self.stats.connected = False
                self._session = None
                session.close()

    def _connect(self):
        for host, port in self.broker.hosts:
            self.stats.connection_state = f"connecting to {host}:{port}"
            session = Session(self.broker, host, port, self)
            try:
                failures = session.open(self._routes().values(), self.broker.confirm,
                                        self.broker.connect_timeout + 5)
            except CONNECTION_ERRORS as error:
                # bad credentials, vhost or certificate: a config problem, not a blip
                refused = isinstance(error, (AccessRefused, ssl.SSLCertVerificationError))
                log.log(logging.ERROR if refused else logging.WARNING,
                        "cannot connect to %s:%s: %s", host, port, describe(error))
                session.close(timeout=0.5)
                continue
            self._parked = {failure.input.name: failure for failure in failures}
            self.buffer.hold_back(self._parked)
            for failure in failures:
                log.error("%s; its lines wait, retrying", failure)
            if not failures:
                self._declare_backoff.reset()
            log.info("connected to %s (confirms %s)", session.address,
                     "on" if self.broker.confirm else "off")
            self.stats.connected = True
            self.stats.connection_state = f"connected to {session.address}"
            return session
        return None

    # ---- one connection ---------------------------------------------------------------

    def _serve(self, session):
        self._session = session
        self._encoders = {name: RouteEncoder(session.channel_id, session.frame_max, item)
                          for name, item in self._routes().items()}
        self._reconnect_now = False
        self._unblocked.set()
        session.start_reader()          # before any write: acks and blocked are read
        resend, self._resend = self._resend, []
        if resend:
            self._write(session, resend)
        now = time.monotonic()
        planned_at = now + self.broker.refresh if self.broker.refresh else None
        if self._parked:
            retry_at = now + self._declare_backoff.next()
            planned_at = min(planned_at, retry_at) if planned_at else retry_at
        heartbeat_every = session.heartbeat / 2.0 if session.heartbeat else None
        tick = min(1.0, heartbeat_every) if heartbeat_every else 1.0
        while True:
            self._check(session)
            now = time.monotonic()
            if heartbeat_every and now - self._last_write >= heartbeat_every:
                session.send_heartbeat()
                self._last_write = now
            if self._reconnect_now or (planned_at is not None and now >= planned_at):
                self._finish_planned(session)
                return
            if session.blocked:
                self._unblocked.clear()
                gevent.wait([self._unblocked, session.failed], timeout=tick, count=1)
                continue
            if self._tracker.outstanding >= CONFIRM_WINDOW:
                self._acked.clear()
                gevent.wait([self._acked, session.failed], timeout=tick, count=1)
                continue
            batches = self.buffer.take(LINES_PER_WRITE, self._parked)
            if batches:
                self._write(session, batches)
                continue
            gevent.wait([self.buffer.readable, session.failed], timeout=tick, count=1)

    def _write(self, session, batches):
        """Encode and send batches in one write; they are in the tracker before it starts."""
        out = []
        tracker, encoders, stats = self._tracker, self._encoders, self.stats
        for batch in batches:
            tracker.add(batch)
            encoders[batch.input].encode(batch, out)
            stats.of(batch.input).published += len(batch.lines)
        try:
            session.write(b"".join(out))
        except CONNECTION_ERRORS as error:
            self._check(session)
            raise SessionLost(describe(error)) from None
        self._last_write = time.monotonic()
        if not self.broker.confirm:
            self._release(tracker.take_all())

    def _finish_planned(self, session):
        """Stop taking lines, wait for every confirm, then let run() reconnect."""
        reason = "declare retry" if self._parked else "refresh"
        deadline = time.monotonic() + REFRESH_CONFIRM_WAIT
        while self._tracker.outstanding and time.monotonic() < deadline:
            self._acked.clear()
            gevent.wait([self._acked, session.failed], timeout=1.0, count=1)
            self._check(session)
        if self._tracker.outstanding:
            log.warning("planned reconnect (%s): %d lines still unconfirmed after %.0f s, "
                        "they will be published again", reason, self._tracker.outstanding,
                        REFRESH_CONFIRM_WAIT)
        log.debug("planned reconnect (%s) of %s", reason, session.address)

    def _check(self, session):
        if session.failed.is_set():
            raise SessionLost(session.error)

    def settled(self):
        """Nothing buffered, nothing awaiting a confirm: every line read is delivered."""
        return not self.buffer.lines and not self._tracker.outstanding and not self._resend

    def _release(self, batches):
        for batch in batches:
            self.stats.of(batch.input).confirmed += len(batch.lines)
            if self.on_confirmed is not None:
                self.on_confirmed(batch)
        self.progress.set()

    # ---- callbacks from the session's reader greenlet --------------------------------

    def on_ack(self, delivery_tag, multiple):
        session = self._session
        if session is None or session.failed.is_set():
            return      # e.g. the ack of a returned line: it must be published again
        self._release(self._tracker.ack(delivery_tag, multiple))
        self._acked.set()

    def on_nack(self, delivery_tag, multiple):
        log.warning("the broker refused (nack) delivery tag %d%s; reconnecting to publish "
                    "the unconfirmed lines again, in order", delivery_tag,
                    " and earlier" if multiple else "")
        session = self._session
        if session is not None:
            session.fail("nack from the broker")

    def on_return(self, exc, exchange, routing_key, message):
        """An unroutable line (its queue was deleted, or unbound from the exchange).

        The broker acks a returned message right after returning it; acting before that
        ack is read (the reader handles one frame at a time) keeps the line unconfirmed:
        the connection is dropped, and the next one declares and binds the queues again
        and publishes the line again. Never lost, at worst repeated.
        """
        headers = message.properties.get("application_headers") or {} if message else {}
        name = headers.get("input", "?")
        if name in self.stats.inputs:
            self.stats.of(name).returned += 1
        log.error("the broker returned a line of input %s as unroutable: exchange %r, "
                  "routing key %r (%s); reconnecting to declare its queue again", name,
                  exchange, routing_key, describe(exc))
        session = self._session
        if session is not None:
            session.fail("a line came back unroutable")

    def on_blocked(self, reason):
        log.warning("the broker blocked publishing (%s); lines wait in the buffer", reason)
        self.stats.connection_state = "blocked"

    def on_unblocked(self):
        log.warning("the broker unblocked publishing")
        self.stats.connection_state = f"connected to {self._session.address}" \
            if self._session else "connected"
        self._unblocked.set()
