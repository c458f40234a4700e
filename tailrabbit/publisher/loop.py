"""The publisher greenlet: buffer -> encoded frames -> broker, pipelined confirms, reconnects.

One greenlet, the only writer of the socket, runs `run()` for the life of the process:
connect (hosts in the order of hosts.py), publish again whatever was not confirmed on the
previous connection, in order, then take batches from the buffer and write them, as many
as are ready per `sendall`, flushing as soon as the buffer runs dry (batching for
throughput, never waiting for a batch to fill for latency).

A batch counts as delivered only when the broker confirmed every line of it; until then it
stays in its input's ConfirmTracker and is published again after a failure (at-least-once).
A planned reconnect (`refresh`, a reload that changes routes, the retry of a parked input)
stops taking lines and waits for every confirm first, so it neither loses nor repeats a
line. An input whose route fails (see parking.py) is parked on its own: its unconfirmed
lines are set aside, in order, and published again first when it is retried; the other
inputs, each on its own channel, are not touched.
"""

import ssl
import time

import gevent
from amqp.exceptions import AccessRefused
from gevent.event import Event

from tailrabbit import logevents
from tailrabbit.publisher.trackers import InputTrackers
from tailrabbit.publisher.events import BrokerEvents
from tailrabbit.publisher.batchframes import make_encoder
from tailrabbit.publisher.hosts import HostRing
from tailrabbit.publisher.parking import Backoff, Parking
from tailrabbit.publisher.pending import PendingLines
from tailrabbit.publisher.routes import ReloadedRoutes
from tailrabbit.publisher.session import (CONNECTION_ERRORS, Session, SessionLost,
                                          describe)

CONFIRM_WINDOW = 50000        # lines published and not yet confirmed, at most
CONFIRM_WINDOW_BYTES = 16 << 20   # and their bytes: memory stays near buffer_bytes
LINES_PER_WRITE = 512         # lines taken from the buffer for one sendall, about
REFRESH_CONFIRM_WAIT = 30.0   # a planned reconnect waits this long for outstanding confirms
CLOSE_WAIT = 2.0              # a polite close, when nothing depends on it
BACKOFF_FIRST, BACKOFF_CAP = 0.5, 30.0
BACKOFF_RESET_AFTER = 10.0    # a connection that lived this long resets the backoff
DECLARE_RETRY_FIRST, RETRY_CAP = 5.0, 60.0
ROUTE_RETRY_FIRST = 2.0       # a nack, return or channel error: often brief (a full queue)


class Publisher(BrokerEvents, PendingLines, ReloadedRoutes):
    def __init__(self, broker, inputs, buffer, stats, on_confirmed=None):
        self.broker = broker
        self.inputs = {item.name: item for item in inputs}
        self._retired = {}              # removed by a reload, lines may still be pending
        # Set by the daemon: does a removed input still have lines to publish (its spool
        # replays)? Its route is kept while it does.
        self.route_needed = lambda name: False
        self._reconnect_now = False
        self.buffer = buffer
        self.stats = stats
        self.on_confirmed = on_confirmed
        self.progress = Event()         # set whenever lines were confirmed (for waiters)
        self._resend = []               # batches to publish first (parked inputs: later)
        self._trackers = InputTrackers()
        self._acked = Event()
        self._unblocked = Event()
        self._parking = Parking(ROUTE_RETRY_FIRST, RETRY_CAP)
        self._session = None
        self._refused_in_round = False
        self._encoders = {}
        self._refresh_at = None
        self._last_write = 0.0
        self._hosts = HostRing(broker.hosts, broker.host_order)
        # How long the last polite close may take. Without confirms, the broker's
        # close-ok is the only proof that it took every line written: it answers only
        # after its channels handled what they were sent, while a socket that just goes
        # away makes it drop what its channels still held (72 of 200,000 lines once, in
        # the bench). The daemon raises this for a drained stop (`closing_time`).
        self.close_wait = CLOSE_WAIT

    # ---- lifecycle -------------------------------------------------------------------

    def run(self):
        """Connect, serve, repeat: after a loss the next host at once (hosts.py)."""
        backoff = Backoff(BACKOFF_FIRST, BACKOFF_CAP)
        while True:
            session, index = self._connect()
            if session is None:
                self.stats.connection_state = "disconnected"
                self._hosts.round_failed()
                delay = backoff.next()
                event = (logevents.no_broker_accepted if self._refused_in_round
                         else logevents.no_broker_answered)
                event(addresses=", ".join(f"{h}:{p}" for h, p in self._hosts.hosts),
                      delay=delay)
                gevent.sleep(delay)
                continue
            started, planned = time.monotonic(), False
            try:
                self._serve(session)
                planned = True
                backoff.reset()                 # a planned reconnect: first host first
                self._hosts.planned()
            except SessionLost as error:
                self._keep_unconfirmed()        # the count: without acked heads released
                logevents.connection_lost(address=session.address, reason=str(error),
                                          count=sum(len(b.lines) for b in self._resend))
                self.stats.connected = False
                self.stats.connection_state = "disconnected"   # not "connected" in a backoff
                lived = time.monotonic() - started
                if lived >= BACKOFF_RESET_AFTER:
                    backoff.reset()
                if self._hosts.lost(index, lived, BACKOFF_RESET_AFTER):
                    delay = backoff.next()          # every host dropped us: back off
                    logevents.hosts_all_dropped(
                        addresses=", ".join(f"{h}:{p}" for h, p in self._hosts.hosts),
                        delay=delay)
                    gevent.sleep(delay)
            finally:
                self._keep_unconfirmed()
                self.stats.connected = False
                self._session = None
                session.close(self._close_wait(session, planned))

    def _close_wait(self, session, planned):
        """A failed connection: no more than a polite try. Without confirms a planned
        reconnect (refresh, reload) waits as long as one waits for confirms: the close-ok
        is then the only proof the broker took every line (2 s dropped lines of a slow
        broker's channels). A stop: what the daemon allows (close_wait)."""
        if session.failed.is_set():
            return CLOSE_WAIT
        if planned and not self.broker.confirm:
            return max(self.close_wait, REFRESH_CONFIRM_WAIT)
        return self.close_wait

    def _connect(self):
        """The first host of the ring that takes us: (session, its index) or (None, None)."""
        self._refused_in_round = False      # a broker answered, and said no (login, TLS)
        for index, (host, port) in self._hosts.round():
            self.stats.connection_state = f"connecting to {host}:{port}"
            session = Session(self.broker, host, port, self)
            try:
                failures = session.open(self._routes().values(), self.broker.confirm,
                                        self.broker.connect_timeout + 5)
            except CONNECTION_ERRORS as error:
                # bad credentials, vhost or certificate: a config problem, not a blip
                refused = isinstance(error, (AccessRefused, ssl.SSLCertVerificationError))
                self._refused_in_round |= refused
                event = logevents.connect_refused if refused else logevents.connect_failed
                event(address=f"{host}:{port}", reason=describe(error))
                session.close(timeout=0.5)
                self._hosts.refused(index)
                continue
            self._hosts.connected(index)
            self._parking.retry_all()           # this connection is their retry
            for failure in failures:
                self._park(failure.input.name, str(failure), DECLARE_RETRY_FIRST)
            self.buffer.hold_back(self._parking.reasons)
            logevents.connected(address=session.address,
                                confirms="on" if self.broker.confirm else "off")
            self.stats.connected = True
            self.stats.connection_state = f"connected to {session.address}"
            return session, index
        return None, None

    # ---- one connection ---------------------------------------------------------------

    def _serve(self, session):
        self._session = session
        self._encoders = {name: make_encoder(session.channels[name], session.frame_max, item,
                                             mandatory=self.broker.confirm)
                          for name, item in self._routes().items()
                          if name in session.channels}
        self._reconnect_now = False
        self._unblocked.set()
        session.start_reader()          # before any write: acks and blocked are read
        resend, self._resend = self._resend, []
        if resend:
            self._write(session, resend)        # a parked input's lines stay aside
        self._refresh_at = (time.monotonic() + self.broker.refresh
                            if self.broker.refresh else None)
        while True:
            self._keep_alive(session)
            if self._planned_due():
                self._finish_planned(session)
                return
            if session.blocked:
                self._unblocked.clear()
                gevent.wait([self._unblocked, session.failed], timeout=self._tick(session),
                            count=1)
                continue
            if (self._trackers.outstanding >= CONFIRM_WINDOW
                    or self._trackers.outstanding_bytes >= CONFIRM_WINDOW_BYTES):
                self._acked.clear()
                gevent.wait([self._acked, session.failed], timeout=self._tick(session),
                            count=1)
                continue
            batches = self.buffer.take(LINES_PER_WRITE, self._parking.reasons)
            if batches:
                self._write(session, batches)
                continue
            gevent.wait([self.buffer.readable, session.failed], timeout=self._tick(session),
                        count=1)

    def _tick(self, session):
        """How long a wait between writes may last: until the next heartbeat is due, at
        most 1 s (planned reconnects, a stop). Not a fixed half interval: libev's cached
        loop time can wake such a wait a hair early, the beat is then not yet due, and the
        connection stays silent for a whole interval (seen: 1.0004 s with heartbeat 1)."""
        if not session.heartbeat:
            return 1.0
        due = self._last_write + session.heartbeat / 2.0
        return min(1.0, max(0.001, due - time.monotonic()))

    def _planned_due(self):
        now = time.monotonic()
        return (self._reconnect_now
                or (self._refresh_at is not None and now >= self._refresh_at)
                or (self._parking.retry_at is not None and now >= self._parking.retry_at))

    def _keep_alive(self, session):
        """Between writes: notice a failed session, answer channels the broker closed,
        send a heartbeat when nothing else was written for half an interval."""
        self._check(session)
        try:
            session.answer_closed_channels()
            now = time.monotonic()
            if session.heartbeat and now - self._last_write >= session.heartbeat / 2.0:
                session.send_heartbeat()
                self._last_write = now
        except CONNECTION_ERRORS as error:
            self._check(session)
            raise SessionLost(describe(error)) from None

    def _write(self, session, batches):
        """Encode and send batches in one write; they are in the tracker before it starts.
        A batch of a parked input, or of an input without a route, is set aside in order."""
        out = []
        trackers, encoders, stats, parking = self._trackers, self._encoders, self.stats, \
            self._parking
        for batch in batches:
            encoder = encoders.get(batch.input)
            if encoder is None or batch.input in parking:
                if encoder is None and batch.input not in parking:
                    self._park(batch.input, "no route on this connection (removed by a "
                               "reload; declared again at the retry)"
                               if batch.input in self._retired else "no such input")
                self._resend.append(batch)
                continue
            # the tracker is told how many messages (delivery tags) the batch became
            messages = encoder.encode(batch, out)
            trackers.add(batch, messages)
            counters = stats.of(batch.input)
            counters.published += len(batch.lines)
            counters.messages += messages
        if not out:
            return
        try:
            session.write(b"".join(out))
        except CONNECTION_ERRORS as error:
            self._check(session)
            raise SessionLost(describe(error)) from None
        self._last_write = time.monotonic()
        if not self.broker.confirm:
            self._release(trackers.take_all())

    def _finish_planned(self, session):
        """Stop taking lines, wait for every confirm (heartbeats going on: the broker drops
        a connection silent for two intervals), then let run() reconnect."""
        reason = ("reload" if self._reconnect_now else "retry of parked inputs"
                  if self._parking.retry_at is not None
                  and time.monotonic() >= self._parking.retry_at else "refresh")
        deadline = time.monotonic() + REFRESH_CONFIRM_WAIT
        while self._trackers.outstanding and time.monotonic() < deadline:
            self._acked.clear()
            gevent.wait([self._acked, session.failed], count=1,
                        timeout=min(self._tick(session), max(0.0, deadline - time.monotonic())))
            self._keep_alive(session)
        if self._trackers.outstanding:
            logevents.planned_reconnect_unconfirmed(
                reason=reason, count=self._trackers.outstanding, seconds=REFRESH_CONFIRM_WAIT)
        logevents.planned_reconnect(reason=reason, address=session.address)

    def _check(self, session):
        if session.failed.is_set():
            raise SessionLost(session.error)
