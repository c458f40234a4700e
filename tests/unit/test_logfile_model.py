"""Model-based test of the file input: random writes, rotations (rename + create,
copytruncate, a copy that tailrabbit sees half-written), truncation, deletion,
re-creation and restarts of tailrabbit against one file input, configured with the path
itself or with a glob that also matches the rotated copies (`api.log*`). Every line
written must be shipped exactly once, in order.

It drives the real FileInput in-process; the broker is replaced by a buffer that confirms
every batch at once (what reaches the broker is tested in tests/integration). Time is
passed explicitly, so `rotate_wait` needs no sleeping.
"""

import os
import shutil

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tailrabbit.settings import InputSettings
from tailrabbit.inputs.logfile import FileInput
from tailrabbit.stats import Stats


class ConfirmingBuffer:
    """Stands in for buffer + publisher + broker: every batch is confirmed at once."""

    def __init__(self):
        self.lines = []

    def put(self, batch, block=True, timeout=None):
        self.lines.extend(batch.lines)
        if batch.source is not None:
            batch.source.confirmed(batch)
        return True


class FileInputModel(RuleBasedStateMachine):
    PATTERN_SUFFIX = ""            # appended to the log's path to make the input's `path`

    def __init__(self):
        super().__init__()
        self.root = None

    @initialize(tmp=st.just(None))
    def setup(self, tmp):
        import tempfile
        self.root = tempfile.mkdtemp(prefix="tr-model-")
        self.path = os.path.join(self.root, "api.log")
        self.state = os.path.join(self.root, "state")
        self.settings = InputSettings(name="api", type="file",
                                      path=self.path + self.PATTERN_SUFFIX, queue="q",
                                      start_at="beginning", rotate_wait=0.0,
                                      max_line_bytes=1 << 20)
        self.buffer = ConfirmingBuffer()
        self.written = []          # every complete line written, in order
        self.partial = b""         # bytes of an unterminated line at the end of the file
        self.seq = 0
        self.late = set()          # unterminated last lines of rotated files
        self.rotated_since_poll = False
        self.clock = 0.0
        self.input = self._new_input()
        self._poll()               # tailrabbit runs before the first line is written
        self.fresh = False         # the current file has content tailrabbit never polled

    def _new_input(self):
        return FileInput(self.settings, self.buffer, Stats(["api"]), self.state)

    def _poll(self):
        self.clock += 1.0
        if not hasattr(self.input, "_started"):
            self.input.start(self.clock)
            self.input._started = True
        self.input.poll(self.clock)
        self.fresh = False
        self.rotated_since_poll = False

    def teardown(self):
        if self.root:
            self.input.close()
            shutil.rmtree(self.root, ignore_errors=True)

    # ---- what the world does to the file --------------------------------------------

    @rule(count=st.integers(1, 40), width=st.integers(0, 300), partial=st.booleans())
    def write(self, count, width, partial):
        lines = []
        for _ in range(count):
            lines.append(b"L%06d %s" % (self.seq, b"x" * width))
            self.seq += 1
        data = b"\n".join(lines) + b"\n"       # a pending partial line is in the file already
        if self.partial:
            lines[0] = self.partial + lines[0]
            self.partial = b""
        self.written.extend(lines)
        if partial:
            self.partial = b"P%06d" % self.seq
            self.seq += 1
            data += self.partial
        with open(self.path, "ab") as handle:
            handle.write(data)
        self.fresh = True

    def _before_rotation(self):
        """The model's one assumption: tailrabbit looks at the file at least once between
        two rotations and between a file's first write and its rotation. The watchdog
        wake-up makes that window milliseconds; logrotate runs hourly at most. Without a
        look, lines written and rotated away unseen cannot be told from older copies."""
        if self.rotated_since_poll or (self.fresh and not self._seen_current_file()):
            self._poll()
        self.rotated_since_poll = True
        self._end_partial_line()

    def _seen_current_file(self):
        st = os.stat(self.path)
        tailer = self.input._tailers.get(self.path)
        return (tailer is not None and tailer.read_pos > 0
                and tailer.inode == (st.st_dev, st.st_ino))

    def _shift_rotated(self):
        for index in (3, 2, 1):
            older = f"{self.path}.{index}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{index + 1}")

    @rule()
    def rotate_rename_create(self):
        if not os.path.exists(self.path):
            return
        self._before_rotation()
        self._shift_rotated()
        os.rename(self.path, self.path + ".1")
        open(self.path, "ab").close()

    @rule()
    def rotate_copytruncate(self):
        if not os.path.exists(self.path):
            return
        self._before_rotation()
        self._shift_rotated()
        shutil.copyfile(self.path, self.path + ".1")
        os.truncate(self.path, 0)

    @rule(cut=st.floats(0, 1), poll_after_copy=st.booleans())
    def rotate_copytruncate_seen_half_copied(self, cut, poll_after_copy):
        """logrotate copies while tailrabbit polls: a glob matching `api.log.1` finds a copy
        in progress (issue 8, item 9: it was followed from its half-way size)."""
        if not os.path.exists(self.path):
            return
        self._before_rotation()
        self._shift_rotated()
        with open(self.path, "rb") as handle:
            data = handle.read()
        cut = int(len(data) * cut)
        with open(self.path + ".1", "wb") as copy:
            copy.write(data[:cut])
        self._poll()
        with open(self.path + ".1", "ab") as copy:
            copy.write(data[cut:])
        if poll_after_copy:
            self._poll()
        os.truncate(self.path, 0)
        self.rotated_since_poll = True

    @rule()
    def truncate_in_place_after_reading(self):
        """`: > file` after tailrabbit read it all (else the lines are gone for anyone)."""
        if not os.path.exists(self.path):
            return
        self._end_partial_line()
        self._poll()
        os.truncate(self.path, 0)
        self.rotated_since_poll = True

    @rule()
    def delete_after_reading(self):
        """A file deleted before anyone read it is gone for anyone: poll first."""
        if not os.path.exists(self.path):
            return
        self._end_partial_line()
        self._poll()
        os.unlink(self.path)
        self.rotated_since_poll = True

    @rule()
    def poll(self):
        self._poll()

    @rule()
    def restart(self):
        """A graceful restart: checkpoints saved, a new process resumes from them."""
        self._poll()
        self.input.close()
        self.input.save_checkpoints()
        self.input = self._new_input()

    def _end_partial_line(self):
        """A rotated-away or deleted file's last line ends there: it is published once the
        old file is drained, which may be after the new file's first lines."""
        if self.partial:
            self.written.append(self.partial)
            self.late.add(self.partial)
            self.partial = b""

    # ---- what must hold ----------------------------------------------------------------

    def _in_order(self, lines):
        return [line for line in lines if line not in self.late]

    @invariant()
    def shipped_lines_are_in_order_and_never_repeated(self):
        if self.root is None:
            return
        shipped = self.buffer.lines
        assert len(set(shipped)) == len(shipped), "a line was shipped twice"
        in_order = self._in_order(shipped)
        assert in_order == self._in_order(self.written)[:len(in_order)], "out of order"

    def check_complete(self):
        for _ in range(3):                 # drain rotated files (rotate_wait = 0)
            self._poll()
        assert sorted(self.buffer.lines) == sorted(self.written), "lines lost"


class CompleteModel(FileInputModel):
    def teardown(self):
        if self.root:
            self.check_complete()
        super().teardown()


class GlobModel(CompleteModel):
    """`path = DIR/api.log*`: the rotated copies are matches too; never shipped twice."""
    PATTERN_SUFFIX = "*"


MODEL_SETTINGS = settings(
    max_examples=int(os.environ.get("TAILRABBIT_MODEL_EXAMPLES", "300")),
    stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
CompleteModel.TestCase.settings = MODEL_SETTINGS
GlobModel.TestCase.settings = MODEL_SETTINGS
TestFileInputModel = CompleteModel.TestCase
TestFileInputModelWithAGlob = GlobModel.TestCase
