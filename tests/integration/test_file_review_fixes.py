"""File input: scenarios of the hostile review (tests/integration/test_review_files.py)
that were fixed, each against the real broker, bodies compared byte for byte.

  - an offset whose previous byte is not "\n" (a checkpoint inside the skipped rest of a
    line cut at max_line_bytes, a copytruncate copy read from there, start_at = end while
    the writer is mid-line) starts skipping to the next line: no piece of a line ships;
  - a copytruncate copy is read on from where the truncated file was read, with its
    reader's state: the event held (and a line read in part) continue in the copy;
  - a file rotated while stopped is read under the path it was followed at: its event
    held ends, before the new file's, when the writer's new file grows;
  - a truncation in place hidden by a constant header longer than the fingerprint and a
    regrowth past our offset is seen: the bytes just before our offset changed;
  - a file rotated away that ends in a line without its "\n" is read to its end before
    the new file: the new file's lines wait until that line is finished or its file
    stayed quiet for rotate_wait (then the line is complete), so it is neither torn nor
    shipped after them.

Where a race with the 1 s poll has to be won by the writer, the tailrabbit process is
held with SIGSTOP while the files change and let go with SIGCONT.
"""

import os
import shutil
import time

from file_helpers import Held, append, file_input, wait_saved
from helpers import wait_for


# ---- an offset inside a line ------------------------------------------------------------

def test_a_cut_long_line_is_not_shipped_again_in_pieces_after_a_restart(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """A line over max_line_bytes is published cut, and its rest is skipped up to the
    next newline. If the checkpoint lands inside the skipped rest, a restart must not
    publish that rest as a line of its own."""
    path = str(tmp_path / "api.log")
    append(path, b"first\n" + b"x" * 40)              # the long line, still being written
    config = file_input(config, queue_name, path, max_line_bytes=16)
    first = tailrabbit_factory(config, name="first")
    broker.wait_depth(queue_name, 2)                  # first, and the cut x * 16
    wait_saved(state_dir, path, 46)                   # the checkpoint: inside the line
    assert first.stop() == 0, first.log()
    append(path, b"yyyy\nnext\n")                     # the long line ends; one more
    second = tailrabbit_factory(config, name="second")
    wait_saved(state_dir, path, os.path.getsize(path))
    assert second.stop() == 0, second.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == [b"first", b"x" * 16, b"next"]


def test_copytruncate_inside_a_cut_long_line_ships_no_piece_of_it(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """The copytruncate copy is read from where the original was consumed: inside the
    skipped rest of a cut line, the rest must still be skipped."""
    path = str(tmp_path / "api.log")
    append(path, b"first\n" + b"x" * 40)
    proc = tailrabbit_factory(file_input(config, queue_name, path, max_line_bytes=16))
    broker.wait_depth(queue_name, 2)
    wait_saved(state_dir, path, 46)
    with Held(proc):
        append(path, b"yyyy\nafter\n")               # the long line ends, then one more
        shutil.copyfile(path, path + ".1")            # logrotate copytruncate
        os.truncate(path, 0)
        append(path, b"new\n")
    proc.wait_for_event("file_copytruncated")
    wait_saved(state_dir, path, 4)
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == [b"first", b"x" * 16, b"after", b"new"]


def test_start_at_end_never_ships_the_rest_of_a_line_being_written(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """First start, start_at = end, while the app is in the middle of a line (a buffered
    writer flushes at block boundaries, not at newlines). The end is inside that line:
    the rest of it is not a line. start_at = end ships only lines that start after the
    first start (the rest of "partial line" is skipped, as after a checkpoint inside a
    line), so only "new" arrives."""
    path = str(tmp_path / "api.log")
    append(path, b"old 1\nold 2\npart")
    config["input:api"] = {"type": "file", "path": path, "queue": queue_name,
                           "start_at": "end"}
    proc = tailrabbit_factory(config)
    wait_for(lambda: os.path.exists(os.path.join(state_dir, "checkpoints-api.json")),
             message="the input's first poll")
    append(path, b"ial line\nnew\n")
    wait_saved(state_dir, path, os.path.getsize(path))
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == [b"new"], f"a piece of a line: {bodies}"


# ---- multiline across a copytruncate ---------------------------------------------------

def test_an_event_continued_in_the_copytruncate_copy_arrives_whole(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """The event held when the file is copytruncated goes on in the copy (lines written
    after our last read, before the copy): the copy is the same content, the event must
    not be cut at the point where we happened to have read."""
    path = str(tmp_path / "api.log")
    append(path, b"0 zero\n1 start\n  a\n")
    proc = tailrabbit_factory(file_input(config, queue_name, path, multiline_start=r"\d ",
                                         multiline_timeout=30))
    broker.wait_depth(queue_name, 1)                  # "0 zero"; "1 start" is held
    wait_saved(state_dir, path, 7)
    with Held(proc):
        append(path, b"  b\n  c\n2 next\n")         # the event goes on, one more event
        shutil.copyfile(path, path + ".1")            # logrotate copytruncate
        os.truncate(path, 0)
        append(path, b"3 new\n4 more\n")
    proc.wait_for_event("file_copytruncated")
    wait_saved(state_dir, path, 6)                    # "3 new" confirmed, "4 more" held
    wait_saved(state_dir, path + ".1", os.path.getsize(path + ".1"))
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == [b"0 zero", b"1 start\n  a\n  b\n  c", b"2 next", b"3 new"]


# ---- multiline across a rotation while stopped ------------------------------------------

def test_an_event_of_a_file_rotated_while_stopped_goes_before_the_new_files_events(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """The old file is read to its end before the new one (CONTRACT): its last event,
    held at the stop, completes when the writer has moved on to the new file, and goes
    out before the new file's events, as it does when the rotation happens while
    tailrabbit runs."""
    path = str(tmp_path / "api.log")
    append(path, b"0 zero\n1 start\n  cont\n")
    config = file_input(config, queue_name, path, multiline_start=r"\d ",
                        multiline_timeout=30)
    first = tailrabbit_factory(config, name="first")
    broker.wait_depth(queue_name, 1)                  # "0 zero"; "1 start" is held
    wait_saved(state_dir, path, 7)
    assert first.stop() == 0, first.log()
    os.rename(path, path + ".1")                      # logrotate create, while stopped
    append(path, b"2 next\n3 more\n")
    second = tailrabbit_factory(config, name="second")
    second.wait_for_event("file_rotated_while_stopped")
    wait_saved(state_dir, path + ".1", os.path.getsize(path + ".1"))
    append(path, b"4 end\n")                          # "3 more" is complete
    wait_saved(state_dir, path, os.path.getsize(path) - len(b"4 end\n"))
    assert second.stop() == 0, second.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == [b"0 zero", b"1 start\n  cont", b"2 next", b"3 more"]


# ---- truncation in place ----------------------------------------------------------------

def test_truncated_and_regrown_past_the_offset_with_the_same_header(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """A log with a long constant header (W3C/IIS `#Fields:`, a CSV header): truncated in
    place (an app that opens it with O_TRUNC at start, `: > file`) and regrown past our
    offset before the next poll. Its first 256 bytes are the same, its size is larger:
    the truncation must still be seen (the bytes just before our offset changed), and
    the new content read from 0."""
    path = str(tmp_path / "api.log")
    header = b"#Fields: " + b" ".join(b"field-%02d" % i for i in range(30))
    assert len(header) > 256
    append(path, header + b"\na 1\na 2\n")
    proc = tailrabbit_factory(file_input(config, queue_name, path))
    broker.wait_depth(queue_name, 3)
    wait_saved(state_dir, path, os.path.getsize(path))
    new = header + b"\nnew 01\nnew 02\nnew 03\n"
    with Held(proc):
        with open(path, "r+b") as handle:             # truncate, then write it again
            handle.truncate(0)
            handle.write(new)
    wait_saved(state_dir, path, len(new))
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == [header, b"a 1", b"a 2", header, b"new 01", b"new 02", b"new 03"]


# ---- an unterminated last line across a rotation ---------------------------------------

def test_the_unterminated_last_line_of_a_rotated_file_goes_before_the_new_files_lines(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """rename + create while the old file ends in an unterminated line (the writer died
    mid-line, or wrote its last record without a newline), then the writer moves on to
    the new file. "The old file is read to its end before the new one" (CONTRACT): its
    last line goes before the new file's lines. It is complete once the old file stayed
    quiet for rotate_wait (not as soon as the new file grows: a writer still holding
    the old file may finish it), so the new file's lines wait until then."""
    path = str(tmp_path / "api.log")
    append(path, b"old 1\n")
    proc = tailrabbit_factory(file_input(config, queue_name, path, rotate_wait=2))
    wait_saved(state_dir, path, 6)
    append(path, b"old 2 unterminated")
    os.rename(path, path + ".1")                      # logrotate create
    append(path, b"new 1\nnew 2\n")                 # the writer moved on
    proc.wait_for_event("file_rotated")
    wait_saved(state_dir, path + ".1", os.path.getsize(path + ".1"))
    wait_saved(state_dir, path, os.path.getsize(path))
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == [b"old 1", b"old 2 unterminated", b"new 1", b"new 2"]


def test_a_rotated_files_last_line_finished_by_a_lagging_writer_arrives_whole_first(
        broker, config, queue_name, tailrabbit_factory, tmp_path, state_dir):
    """Why the new file's lines wait rather than the old file's unterminated line going
    out at once: a writer that still holds the old file (rotate_wait) may finish that line.
    It must arrive whole, once, before the new file's lines."""
    path = str(tmp_path / "api.log")
    append(path, b"old 1\n")
    proc = tailrabbit_factory(file_input(config, queue_name, path, rotate_wait=10))
    wait_saved(state_dir, path, 6)
    with Held(proc):
        append(path, b"old 2 unter")
        os.rename(path, path + ".1")                  # logrotate create
        append(path, b"new 1\n")                      # another writer moved on
    proc.wait_for_event("file_rotated")
    time.sleep(1.5)                                   # a poll or two: the new line waits
    append(path + ".1", b"minated\n")                 # the lagging writer ends its line
    append(path, b"new 2\n")
    wait_saved(state_dir, path + ".1", os.path.getsize(path + ".1"))
    wait_saved(state_dir, path, os.path.getsize(path))
    assert proc.stop() == 0, proc.log()
    bodies = [m.body for m in broker.consume_all(queue_name)]
    assert bodies == [b"old 1", b"old 2 unterminated", b"new 1", b"new 2"]
