"""The lifecycle: start the greenlets, turn signals into control messages, stop gracefully.

Signal handlers only queue the signal's name; one loop (`run`) dispatches them, so no
handler ever runs shutdown code re-entrantly (the gunicorn arbiter's pattern). Any input or
the publisher dying from an unexpected exception stops the process with exit 1 so
supervisord restarts it: a silently dead input is the worst failure a shipper can have.
"""

import time

import gevent

from tailrabbit import early_signals, exits, logevents
from tailrabbit.buffer import LineBuffer
from tailrabbit.control import ControlQueue, Halt, StartupError
from tailrabbit.files.watcher import DirectoryWatcher
from tailrabbit.inputset import KILL_TIMEOUT, InputSet, stop_greenlets
from tailrabbit.publisher.loop import Publisher
from tailrabbit.reload import reload_config
from tailrabbit.stats import Stats

SIGNALS = early_signals.NAMES


CHECKPOINT_INTERVAL = 1.0


class Daemon:
    def __init__(self, settings):
        self.settings = settings
        self.control = ControlQueue()
        self.stats = Stats(item.name for item in settings.inputs)
        self.buffer = LineBuffer(settings.process.buffer, settings.process.buffer_bytes)
        self.watcher = DirectoryWatcher()
        self.publisher = Publisher(settings.broker, settings.inputs, self.buffer, self.stats,
                                   on_confirmed=self._on_confirmed)
        # Every input that cannot re-read its lines (all but files) has a spool: for
        # overflow = spool, and for what a stop could not deliver. A removed input's
        # spool keeps its route until it is empty.
        self.inputs = InputSet(settings.process, self.buffer, self.stats, self.watcher,
                               self.control.put)
        spools = self.inputs.spools
        self.publisher.route_needed = lambda name: (name in spools
                                                    and spools[name].holds_lines())
        self.metrics = None
        if settings.process.metrics:
            from tailrabbit.metrics import MetricsServer
            self.metrics = MetricsServer(settings.process.metrics, self.stats, self.buffer,
                                         self.inputs, self.publisher)
        self._publisher_greenlet = None
        self._timers = []

    # ---- start and run ---------------------------------------------------------------

    def start(self):
        from tailrabbit.statedir import prepare_state_dir
        prepare_state_dir(self.settings)      # created/made 0700, judged as --check does
        if self.metrics is not None:
            try:
                self.metrics.start()      # a port in use fails here, before any input runs
            except OSError as error:
                host, port = self.settings.process.metrics
                raise StartupError(f"{self.settings.path}: [tailrabbit] metrics: cannot "
                                   f"listen on {host}:{port}: {error.strerror}") from None
        for signum, name in SIGNALS.items():
            if name == "USR2":      # at once, even while the control loop is busy
                gevent.signal_handler(signum, self.handle_usr2)
            else:
                gevent.signal_handler(signum, self.control.put, (name,))
        for name in early_signals.take():     # arrived while the config was loading
            self.control.put((name,))
        self._publisher_greenlet = gevent.spawn(self.publisher.run)
        self._publisher_greenlet.link(self._on_publisher_exit)
        items = [self.inputs.create(item) for item in self.settings.inputs]
        for item in items:
            self.inputs.start(item)
        self.inputs.warn_unknown_spools()
        if self.settings.process.stats_interval:
            self._timers.append(gevent.spawn(self._log_stats_forever))
        self._timers.append(gevent.spawn(self._save_checkpoints_forever))
        logevents.started(count=len(items), inputs=[f"{i.name}:{i.kind}" for i in items],
                          buffer=self.settings.process.buffer,
                          buffer_bytes=self.settings.process.buffer_bytes)

    def run(self):
        """Dispatch control messages until the process should exit; returns the status."""
        try:
            while True:
                name, *args = self.control.get()
                getattr(self, f"handle_{name.lower()}")(*args)
        except Halt as halt:
            if halt.reason:
                event = logevents.stopped if halt.status == exits.OK else logevents.exiting
                event(reason=halt.reason)
            return halt.status

    # ---- control messages ------------------------------------------------------------

    def handle_term(self, name="SIGTERM"):
        logevents.stopping(signal=name, seconds=self.settings.process.shutdown_timeout)
        self.stop()

    def handle_int(self):
        self.handle_term("SIGINT")

    def handle_usr1(self):
        self.log_stats()

    def handle_usr2(self):
        from gevent.util import format_run_info
        logevents.tasks_dumped(stacks="\n".join(format_run_info()))

    def handle_hup(self):
        reload_config(self)

    def handle_finished(self):
        """Every input reached its end (stdin at EOF): wait for every confirm, exit 0."""
        logevents.inputs_finished()
        self.inputs.stop_readers()
        drained = self._drain(None)
        self._finish(drained)
        raise Halt(exits.OK, "done: every line confirmed" if drained else "stopped")

    def handle_crash(self, what, error):
        """An unexpected failure: no draining (the process may be in any state), but what
        memory holds of FIFO and stdin inputs is spooled before exit 1."""
        logevents.crashed(task=what, reason=repr(error))
        try:
            self.inputs.stop_readers()
            self._finish(False)
        except Exception as failure:       # a second failure must not hide the first
            logevents.crash_stop_failed(reason=repr(failure))
        raise Halt(exits.FAILURE,
                   f"{what} failed: {error!r}; exiting so the supervisor restarts us")

    # ---- stopping --------------------------------------------------------------------

    def stop(self):
        """Graceful: stop reading, drain within shutdown_timeout, spool what is left."""
        self.inputs.stop_readers()
        self._finish(self._drain(self.settings.process.shutdown_timeout))
        raise Halt(exits.OK, "stopped")

    def _drain(self, timeout):
        """Wait until nothing is buffered, spooled or unconfirmed; a second signal cuts it
        short."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self.publisher.settled() and not self.inputs.holds_spooled_lines()):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self.publisher.progress.clear()
            gevent.wait([self.publisher.progress, self.control.ready],
                        timeout=min(left, 1.0) if left is not None else 1.0, count=1)
            message = self.control.get(timeout=0)
            if message is None:
                continue
            name = message[0]
            if name in ("TERM", "INT"):
                logevents.drain_cut_short(signal=f"SIG{name}")
                return False
            if name == "USR1":
                self.log_stats()
            elif name == "crash":
                self.handle_crash(*message[1:])
        return True

    def _finish(self, drained):
        wait = KILL_TIMEOUT
        if drained and not self.settings.broker.confirm:
            # Without confirms, "delivered" is the broker's close-ok: give it the time.
            self.publisher.close_wait = self.settings.process.shutdown_timeout
            wait += self.publisher.close_wait
        stop_greenlets([self._publisher_greenlet] + self._timers, wait)
        self.inputs.stop_replays()
        if not drained:
            self.inputs.spool_undelivered(self.publisher.take_unconfirmed())
        self.log_stats()
        self.save_checkpoints()
        self.inputs.close_spools()
        self.watcher.stop()
        if self.metrics is not None:
            self.metrics.stop()

    def wait_delivered(self, name):
        """Until no line of input `name` awaits a confirm (at most shutdown_timeout)."""
        deadline = time.monotonic() + self.settings.process.shutdown_timeout
        while self.publisher.unconfirmed_of(name):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.publisher.progress.clear()
            self.publisher.progress.wait(min(left, 1.0))
        return True

    def _on_publisher_exit(self, greenlet):
        self.control.put(("crash", "publisher", greenlet.exception))

    # ---- checkpoints ------------------------------------------------------------------

    @staticmethod
    def _on_confirmed(batch):
        """The broker confirmed every line of `batch`: its file checkpoint or its spool
        position may move."""
        if batch.source is not None:
            batch.source.confirmed(batch)

    def save_checkpoints(self):
        self.inputs.save_checkpoints()

    def _save_checkpoints_forever(self):
        """At least once a second while they change, so a SIGKILL repeats little."""
        while True:
            gevent.sleep(CHECKPOINT_INTERVAL)
            self.save_checkpoints()

    # ---- stats -----------------------------------------------------------------------

    def log_stats(self):
        self.stats.log(self.buffer.held, self.buffer.held_bytes)

    def _log_stats_forever(self):
        while True:
            gevent.sleep(self.settings.process.stats_interval)
            self.log_stats()
