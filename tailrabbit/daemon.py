"""The lifecycle: start the greenlets, turn signals into control messages, stop gracefully.

Signal handlers only queue the signal's name; one loop (`run`) dispatches them, so no
handler ever runs shutdown code re-entrantly (the gunicorn arbiter's pattern). Any input or
the publisher dying from an unexpected exception stops the process with exit 1 so
supervisord restarts it: a silently dead input is the worst failure a shipper can have.
"""

import logging
import os
import signal
import time

import gevent

from tailrabbit.buffer import LineBuffer
from tailrabbit.control import ControlQueue, Halt, StartupError
from tailrabbit.files.watcher import DirectoryWatcher
from tailrabbit.inputs import make_input
from tailrabbit.publisher.loop import Publisher
from tailrabbit.reload import reload_config
from tailrabbit.spool import Spool
from tailrabbit.stats import Stats

log = logging.getLogger("tailrabbit")

SIGNALS = {signal.SIGTERM: "TERM", signal.SIGINT: "INT", signal.SIGHUP: "HUP",
           signal.SIGUSR1: "USR1"}


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
        process = settings.process
        # Every input that cannot re-read its lines (all but files) has a spool: for
        # overflow = spool, and for what a graceful stop could not deliver.
        self.spools = {item.name: Spool(process.state_dir, item.name, process.spool_max_bytes,
                                        self.buffer, self.stats.of(item.name))
                       for item in settings.inputs if item.type != "file"}
        self.inputs = {item.name: make_input(item, self.buffer, self.stats, process.state_dir,
                                             spool=self.spools.get(item.name),
                                             watcher=self.watcher)
                       for item in settings.inputs}
        self._replay_greenlets = []
        self.metrics = None
        if process.metrics:
            from tailrabbit.metrics import MetricsServer
            self.metrics = MetricsServer(process.metrics, self.stats, self.buffer)
        self._input_greenlets = {}
        self._replaced = None
        self._retired_inputs = []
        self._publisher_greenlet = None
        self._stats_greenlet = None
        self._checkpoint_greenlet = None

    # ---- start and run ---------------------------------------------------------------

    def start(self):
        state_dir = self.settings.process.state_dir
        try:
            os.makedirs(state_dir, exist_ok=True)
            probe = os.path.join(state_dir, ".write-test")
            with open(probe, "w"):
                pass
            os.unlink(probe)
        except OSError as error:
            raise StartupError(f"{self.settings.path}: [tailrabbit] state_dir: cannot write "
                               f"to {state_dir}: {error.strerror}") from None
        if self.metrics is not None:
            try:
                self.metrics.start()      # a port in use fails here, before any input runs
            except OSError as error:
                host, port = self.settings.process.metrics
                raise StartupError(f"{self.settings.path}: [tailrabbit] metrics: cannot "
                                   f"listen on {host}:{port}: {error.strerror}") from None
        for signum, name in SIGNALS.items():
            gevent.signal_handler(signum, self.control.put, (name,))
        self._publisher_greenlet = gevent.spawn(self.publisher.run)
        self._publisher_greenlet.link(self._on_publisher_exit)
        for spool in self.spools.values():
            greenlet = gevent.spawn(spool.replay_forever)
            greenlet.link_exception(lambda g: self.control.put(("crash", "spool replay",
                                                                g.exception)))
            self._replay_greenlets.append(greenlet)
        for item in self.inputs.values():
            self._spawn_input(item)
        if self.settings.process.stats_interval:
            self._stats_greenlet = gevent.spawn(self._log_stats_forever)
        self._checkpoint_greenlet = gevent.spawn(self._save_checkpoints_forever)
        log.info("tailrabbit started: %d inputs (%s), buffer %d lines",
                 len(self.inputs), ", ".join(f"{n}:{i.kind}" for n, i in self.inputs.items()),
                 self.settings.process.buffer)

    def run(self):
        """Dispatch control messages until the process should exit; returns the status."""
        try:
            while True:
                name, *args = self.control.get()
                getattr(self, f"handle_{name.lower()}")(*args)
        except Halt as halt:
            if halt.reason:
                (log.info if halt.status == 0 else log.error)("%s", halt.reason)
            return halt.status

    # ---- control messages ------------------------------------------------------------

    def handle_term(self, name="SIGTERM"):
        self.stop(f"{name}: stopping, draining for at most "
                  f"{self.settings.process.shutdown_timeout:g} s")

    def handle_int(self):
        self.handle_term("SIGINT")

    def handle_usr1(self):
        self.log_stats()

    def handle_hup(self):
        reload_config(self)

    def handle_finished(self):
        """Every input reached its end (stdin at EOF): wait for every confirm, exit 0."""
        log.info("all inputs finished; waiting for the broker to confirm every line")
        self._stop_greenlets(self._input_greenlets.values())
        drained = self._drain(None)
        self._finish(drained)
        raise Halt(0, "done: every line confirmed" if drained else "stopped")

    def handle_crash(self, what, error):
        raise Halt(1, f"{what} failed: {error!r}; exiting so the supervisor restarts us")

    # ---- stopping --------------------------------------------------------------------

    def stop(self, reason):
        log.info("%s", reason)
        self._stop_greenlets(self._input_greenlets.values())
        self._finish(self._drain(self.settings.process.shutdown_timeout))
        raise Halt(0, "stopped")

    def _drain(self, timeout):
        """Wait until nothing is buffered or unconfirmed; a second signal cuts it short."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self.publisher.settled()
                   and not any(s.holds_lines() for s in self.spools.values())):
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
                log.warning("SIG%s while draining: stopping now", name)
                return False
            if name == "USR1":
                self.log_stats()
            elif name == "crash":
                self.handle_crash(*message[1:])
        return True

    def _finish(self, drained):
        self._stop_greenlets([self._publisher_greenlet, self._stats_greenlet,
                              self._checkpoint_greenlet] + self._replay_greenlets)
        if not drained:
            self._spool_undelivered()
        self.log_stats()
        self.save_checkpoints()
        for spool in self.spools.values():
            spool.close()
        self.watcher.stop()
        if self.metrics is not None:
            self.metrics.stop()

    def _spool_undelivered(self):
        """The broker did not confirm everything in time: what only memory holds goes to
        the spools (files keep theirs: their checkpoints did not move past it)."""
        pending = self.publisher.take_unconfirmed()
        for name, spool in self.spools.items():
            batches = [b for b in pending if b.input == name] + self.buffer.remove_input(name)
            lines = sum(len(b.lines) for b in batches)
            spool.prepend(batches)
            if lines:
                log.warning("input %s: %d lines not confirmed by the broker were spooled to "
                            "%s; they are published first at the next start", name, lines,
                            spool.directory)
        left = self.buffer.lines + sum(len(b.lines) for b in pending
                                       if b.input not in self.spools)
        if left:
            log.warning("stopped with %d lines of log files not confirmed; they are read "
                        "again from the checkpoints at the next start", left)

    @staticmethod
    def _stop_greenlets(greenlets):
        greenlets = [g for g in greenlets if g is not None]
        for greenlet in greenlets:
            greenlet.unlink_all()
        gevent.killall(greenlets, timeout=5)

    def _spawn_input(self, item):
        greenlet = gevent.spawn(item.run)
        greenlet.link(lambda g, name=item.name: self._on_input_exit(name, g))
        self._input_greenlets[item.name] = greenlet

    def start_input(self, settings):
        process = self.settings.process
        self.stats.of(settings.name)
        if settings.type != "file" and settings.name not in self.spools:
            spool = Spool(process.state_dir, settings.name, process.spool_max_bytes,
                          self.buffer, self.stats.of(settings.name))
            self.spools[settings.name] = spool
            replay = gevent.spawn(spool.replay_forever)
            self._replay_greenlets.append(replay)
        item = make_input(settings, self.buffer, self.stats, process.state_dir,
                          spool=self.spools.get(settings.name), watcher=self.watcher)
        if settings.name in self.inputs:           # replacing: keep the old one to stop
            self._replaced = self.inputs[settings.name], self._input_greenlets[settings.name]
        self.inputs[settings.name] = item
        self._spawn_input(item)

    def stop_input(self, name, replace=False):
        if replace:
            item, greenlet = self._replaced
        else:
            item, greenlet = self.inputs.pop(name), self._input_greenlets.pop(name)
        self._stop_greenlets([greenlet])
        if not replace and hasattr(item, "save_checkpoints"):
            item.save_checkpoints()
            self._retired_inputs.append(item)     # confirms of its lines still arrive

    def _on_input_exit(self, name, greenlet):
        if greenlet.successful() and self.inputs[name].finished:
            if all(item.finished for item in self.inputs.values()):
                self.control.put(("finished",))
            return
        error = greenlet.exception if not greenlet.successful() else "returned"
        self.control.put(("crash", f"input {name}", error))

    def _on_publisher_exit(self, greenlet):
        self.control.put(("crash", "publisher", greenlet.exception))

    # ---- checkpoints ------------------------------------------------------------------

    @staticmethod
    def _on_confirmed(batch):
        """The broker confirmed every line of `batch`: its file checkpoint may move."""
        if batch.source is not None:
            record, generation = batch.source
            record.confirm(generation, batch.end_offset)

    def save_checkpoints(self):
        for spool in self.spools.values():
            try:
                spool.save_position()
            except OSError as error:
                log.error("cannot save the spool position of input %s: %s",
                          spool.input_name, error)
        for item in list(self.inputs.values()) + self._retired_inputs:
            save = getattr(item, "save_checkpoints", None)
            if save is not None:
                try:
                    save()
                except OSError as error:
                    log.error("cannot save checkpoints of input %s: %s", item.name, error)

    def _save_checkpoints_forever(self):
        """At least once a second while they change, so a SIGKILL repeats little."""
        while True:
            gevent.sleep(CHECKPOINT_INTERVAL)
            self.save_checkpoints()

    # ---- stats -----------------------------------------------------------------------

    def log_stats(self):
        self.stats.log(self.buffer.held)

    def _log_stats_forever(self):
        while True:
            gevent.sleep(self.settings.process.stats_interval)
            self.log_stats()
