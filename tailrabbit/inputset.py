"""The one owner of the inputs: each input's reader greenlet, its spool and the spool's
replay greenlet, from start through reloads to the stop.

Every greenlet is spawned through `_spawn`, which always reports a crash to the control
loop: an input that dies silently while its spool keeps growing is the worst failure a
shipper can have, and a second, forgetful spawn path is how that happens (the SIGHUP path
once spawned replays without a crash watch). After gunicorn's arbiter: `add`, `remove`,
`replace`, `stop_readers`.

A spool outlives its input: an input removed by SIGHUP keeps its spool and replay until
every spooled line is delivered (the publisher keeps the route while `holds_lines`).
"""

import os

import gevent

from tailrabbit import logevents
from tailrabbit.inputs import make_input
from tailrabbit.inputs.handover import UNFINISHED, Handover, spool_kept_line
from tailrabbit.spool import Spool

KILL_TIMEOUT = 2.0       # a killed greenlet only writes its batch to the spool: quick


class InputSet:
    def __init__(self, process, buffer, stats, watcher, report):
        """`report(message)`: posts to the control loop ("crash", what, error) or
        ("finished",)."""
        self.process = process
        self.buffer = buffer
        self.stats = stats
        self.watcher = watcher
        self.report = report
        self.inputs = {}            # name -> Input
        self.readers = {}           # name -> reader greenlet
        self.spools = {}            # name -> Spool, for every input that cannot re-read
        self.replays = {}           # name -> replay greenlet of that spool
        self.retired = []           # removed file inputs: confirms still move checkpoints

    # ---- starting ----------------------------------------------------------------------

    def _spawn(self, body, what):
        greenlet = gevent.spawn(body)
        greenlet.link_exception(lambda g: self.report(("crash", what, g.exception)))
        return greenlet

    def create(self, settings):
        """Make the input (and its spool) without starting it; spools are opened before
        any reader so a replay is ready when the first line arrives."""
        self.stats.of(settings.name)
        spool = None
        if (settings.type != "file" or settings.name in self.spools
                or self._spooled_on_disk(settings.name)):
            spool = self._open_spool(settings.name)
            if settings.type != "fifo":
                spool_kept_line(settings, spool)
        item = make_input(settings, self.buffer, self.stats, self.process.state_dir,
                          spool=spool, watcher=self.watcher)
        removed = [old for old in self.retired if old.name == settings.name]
        if removed and item.kind == "file":     # added back: one checkpoint store
            self.retired.remove(removed[0])
            item.adopt(removed[0])
        return item

    def _open_spool(self, name, replay=True):
        spool = self.spools.get(name)
        if spool is None:
            spool = self.spools[name] = Spool(
                self.process.state_dir, name, self.process.spool_max_bytes,
                self.buffer, self.stats.of(name))
            if replay:
                self.replays[name] = self._spawn(spool.replay_forever,
                                                 f"spool replay of {name}")
        return spool

    def _spooled_on_disk(self, name):
        """A file input has a spool only when a stop left lines in it (lines its files no
        longer hold); no empty directory for every file input."""
        directory = os.path.join(self.process.state_dir, "spool", name)
        try:
            return any(_holds_lines(entry.name) and entry.stat().st_size
                       for entry in os.scandir(directory))
        except OSError:
            return False

    def start(self, item):
        self.inputs[item.name] = item
        greenlet = gevent.spawn(item.run)
        greenlet.link(lambda g, name=item.name, it=item: self._reader_exited(name, it, g))
        self.readers[item.name] = greenlet

    def add(self, settings):
        self.start(self.create(settings))

    def _reader_exited(self, name, item, greenlet):
        if greenlet.successful() and item.finished:
            if all(other.finished for other in self.inputs.values()):
                self.report(("finished",))
            return
        error = greenlet.exception if not greenlet.successful() else "returned"
        self.report(("crash", f"input {name}", error))

    def warn_unknown_spools(self):
        """Spools left by inputs no longer in the config: their lines wait, say so."""
        directory = os.path.join(self.process.state_dir, "spool")
        try:
            names = os.listdir(directory)
        except OSError:
            return
        for name in sorted(set(names) - set(self.inputs)):
            path = os.path.join(directory, name)
            try:
                size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)
                           if _holds_lines(f))
            except OSError:
                continue
            if size:
                logevents.spool_orphaned(path=path, bytes=size, input=name)

    # ---- reloads -----------------------------------------------------------------------

    def remove(self, name):
        """Stop an input's reader; its spool keeps replaying what it holds. A file input
        is kept (`retired`): confirms of its lines still move its checkpoints, and a stop
        with the broker down judges its lines as a configured one's (spool_undelivered)."""
        item, greenlet = self.inputs.pop(name), self.readers.pop(name)
        item.keeps_unfinished = False       # nobody reads this FIFO on: a line of its own
        stop_greenlets([greenlet])
        if hasattr(item, "save_checkpoints"):
            self._save(item)
            self.retired.append(item)       # confirms of its lines still arrive
        return item

    def replace(self, settings):
        """A FIFO or stdin input with new reading settings: the new reader opens first
        (a FIFO writer never finds the pipe without one), then the old one stops; the
        lines it held go to the shared spool, the line it was in the middle of to the new
        reader (inputs/handover.py: one line is never torn in two by a reload)."""
        old_item, old_greenlet = self.inputs[settings.name], self.readers[settings.name]
        new_item, handover = self.create(settings), None
        if new_item.kind == "file":
            # A file input takes no handover (the part was lost with it): nobody reads
            # this pipe on, so what the old reader held is a line of its own, spooled.
            old_item.keeps_unfinished = False
        else:   # the old reader's unfinished line goes to the new one, which reads then
            handover = old_item.handover_to = new_item.handover_from = Handover()
        self.start(new_item)
        stop_greenlets([old_greenlet])
        if handover is not None:
            handover.give(None)      # it held none (between writers, or not reading)
        return old_item

    def restart_file_input(self, settings, wait_delivered):
        """A file input with new reading settings resumes from its checkpoint, so the
        lines it had buffered are dropped from the buffer (they are read again) and the
        ones in flight are waited for (`wait_delivered`) before the checkpoint is saved;
        without that, every buffered line would be published twice."""
        old = self.inputs.pop(settings.name)
        stop_greenlets([self.readers.pop(settings.name)])
        # ...except lines no file gives again (replayed from its spool, of a deleted
        # file): back into the buffer, first, for the new input's turn
        for batch in old.not_readable_again(self.buffer.remove_input(settings.name)
                                            + old.spilled):
            self.buffer.put(batch, block=False)
        if not wait_delivered(settings.name):
            logevents.reload_unconfirmed(input=settings.name)
        self._save(old)
        self.add(settings)

    # ---- stopping ----------------------------------------------------------------------

    def stop_readers(self):
        """Every reader stops; a batch it was blocked on goes to its spool."""
        stop_greenlets(list(self.readers.values()))

    def stop_replays(self):
        stop_greenlets(list(self.replays.values()))

    def holds_spooled_lines(self):
        return any(spool.holds_lines() for spool in self.spools.values())

    def spool_undelivered(self, pending):
        """What only memory holds (`pending`: batches not confirmed, and the buffer's)
        goes to the spools, each input on its own: one failing spool (a full disk) must
        not keep the others from being written. Files keep theirs (their checkpoints did
        not move past it), except lines no file will give again (not_readable_again).

        A file input removed by SIGHUP (`retired`) is judged the same way, under its name:
        what it read was to be published (README, reload), and its lines of a file
        deleted or truncated since exist nowhere else. Those are spooled; the next start
        reports the spool (spool_orphaned) and the input added back publishes it first.
        Its lines still in their file stay there, behind its checkpoint, as an input in
        the config leaves them: added back, it reads them once; not added back, nobody
        does, as for the rest of that file (the operator removed the input). Rejected:
        spooling those too (the input added back would ship them twice: its checkpoint
        never passed them) and leaving all of it (the lines of a deleted file were lost).
        """
        left = 0
        files = self._file_inputs()
        for name in list(self.spools) + [n for n in files if n not in self.spools]:
            batches = [b for b in pending if b.input == name] + self.buffer.remove_input(name)
            if name in files:
                batches += files[name].spilled
                lost = files[name].not_readable_again(batches)
                left += sum(len(b.lines) for b in batches) - sum(len(b.lines) for b in lost)
                batches = lost
                if not batches:
                    continue
            spool = self._open_spool(name, replay=False)
            lines = sum(len(b.lines) for b in batches)
            try:
                spool.prepend(batches)
            except OSError as error:
                logevents.unconfirmed_lost(input=name, count=lines, path=spool.directory,
                                           reason=str(error.strerror or error))
                continue
            if lines:
                logevents.unconfirmed_spooled(input=name, count=lines, path=spool.directory)
        left += self.buffer.lines + sum(len(b.lines) for b in pending
                                        if b.input not in self.spools
                                        and b.input not in files)
        if left:
            logevents.stopped_unconfirmed(count=left)

    def _file_inputs(self):
        """name -> the file input of that name whose lines may be held: a configured one
        or one a reload removed (one name, one input: added back, it adopted the
        removed one, its checkpoints and spilled lines: create)."""
        return {item.name: item for item in
                self.retired + [i for i in self.inputs.values() if i.kind == "file"]}

    def close_spools(self):
        for name, spool in self.spools.items():
            try:
                spool.close()
            except OSError as error:
                logevents.spool_close_failed(input=name, reason=str(error))

    # ---- checkpoints -------------------------------------------------------------------

    def save_checkpoints(self):
        for name, spool in self.spools.items():
            try:
                spool.save_position()
            except OSError as error:
                self._save_error(name, "spool position", error)
        for item in list(self.inputs.values()) + self.retired:
            self._save(item)

    def _save(self, item):
        save = getattr(item, "save_checkpoints", None)
        if save is not None:
            try:
                save()
            except OSError as error:
                self._save_error(item.name, "checkpoints", error)

    def _save_error(self, name, what, error):
        """Saves run every second: the event is rate-limited per input and `what`."""
        logevents.save_failed(input=name, what=what, reason=str(error.strerror or error))


def _holds_lines(file_name):
    """A spool segment, or the line a FIFO input kept at its stop."""
    return file_name.endswith(".seg") or file_name == UNFINISHED


def stop_greenlets(greenlets, timeout=KILL_TIMEOUT):
    """Kill without the exit links firing (a stopped greenlet is no crash), waiting at most
    KILL_TIMEOUT: a stop must end within its bound even if one greenlet lingers (e.g. a
    polite connection close to a hung broker). gevent.killall(timeout=) would raise
    Timeout instead, and turn a stop into a crash that spools nothing."""
    greenlets = [g for g in greenlets if g is not None]
    for greenlet in greenlets:
        greenlet.unlink_all()
        greenlet.kill(block=False)
    gevent.joinall(greenlets, timeout=timeout)
    for greenlet in greenlets:
        if not greenlet.dead:
            logevents.stop_timeout(task=str(greenlet), seconds=timeout)
