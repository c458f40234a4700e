"""FileTailer on its own (it returns what it read; nothing to fake but a framer factory)."""

import dataclasses
import os

from tailrabbit.files.checkpoints import CheckpointStore
from tailrabbit.files.identity import identify
from tailrabbit.framing import Framer
from tailrabbit.files.tailer import FileTailer
from tailrabbit.settings import InputSettings

ITEM = InputSettings(name="api", type="file", path="/l/a.log", queue="q")


def tailer_of(tmp_path, data, offset=0, **keys):
    path = tmp_path / "a.log"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    record = CheckpointStore(str(tmp_path), "api").add(identify(fd), str(path), offset)
    item = dataclasses.replace(ITEM, **keys)
    return FileTailer(lambda at: Framer(item, at, want_offsets=True), str(path), fd, record,
                      offset), path


def lines_of(pairs):
    return [line for framed, _ in pairs for line in framed.lines]


def test_read_returns_whole_lines_with_offsets_and_keeps_a_partial_one(tmp_path):
    tailer, path = tailer_of(tmp_path, b"one\ntwo\npart")
    pairs = list(tailer.read(5.0))
    assert lines_of(pairs) == [b"one", b"two"]
    framed, position = pairs[0]
    assert framed.offsets == [0, 4] and framed.end_offset == 8
    assert position.record is tailer.record and tailer.record.read_end == 8
    assert tailer.read_pos == 12 and tailer.last_growth == 5.0
    assert list(tailer.read(6.0)) == [] and tailer.last_growth == 5.0   # nothing new
    with open(path, "ab") as handle:
        handle.write(b"ial\n")
    assert lines_of(tailer.read(7.0)) == [b"partial"]
    tailer.close()


def test_read_end_moves_only_once_the_owner_took_the_lines(tmp_path):
    tailer, _ = tailer_of(tmp_path, b"a\nb\n")
    pairs = tailer.read(1.0)
    next(pairs)                                # taken, not yet handed on
    assert tailer.record.read_end == 0
    assert list(pairs) == [] and tailer.record.read_end == 4
    tailer.close()


def test_flush_gives_the_unterminated_tail_and_the_event_held(tmp_path):
    tailer, _ = tailer_of(tmp_path, b"S one\n more\nS two\n tail", multiline_start="S")
    assert lines_of(tailer.read(1.0)) == [b"S one\n more"]
    assert tailer.record.read_end == len(b"S one\n more\n")     # the event held starts here
    assert lines_of(tailer.flush()) == [b"S two\n tail"]
    assert tailer.record.read_end == len(b"S one\n more\nS two\n tail")
    tailer.close()


def test_end_event_and_restart_at(tmp_path):
    tailer, _ = tailer_of(tmp_path, b"S one\n more\npartial", multiline_start="S")
    assert lines_of(tailer.read(1.0)) == []
    assert lines_of(tailer.end_event()) == [b"S one\n more"]   # not the partial line
    assert tailer.consumed == len(b"S one\n more\n")
    tailer.restart_at(0)                                       # read again, from 0
    assert lines_of(tailer.read(2.0)) == []
    assert lines_of(tailer.flush()) == [b"S one\n more\npartial"]
    tailer.close()


def test_an_offset_inside_a_line_skips_the_rest_of_that_line(tmp_path):
    # a checkpoint inside the skipped rest of a cut line; start_at = end mid-line
    tailer, _ = tailer_of(tmp_path, b"first\nxxxxxxxxxxyyy\nnext\n", offset=12,
                          max_line_bytes=4)
    pairs = list(tailer.read(1.0))
    assert lines_of(pairs) == [b"next"] and pairs[-1][0].offsets == [20]
    tailer.close()


def test_an_offset_inside_a_line_skips_it_before_an_event_too(tmp_path):
    tailer, _ = tailer_of(tmp_path, b"S one\n more\nS two\n", offset=8, multiline_start="S")
    assert lines_of(tailer.read(1.0)) == []
    assert lines_of(tailer.flush()) == [b"S two"]
    tailer.close()


def test_an_offset_at_a_line_start_skips_nothing(tmp_path):
    tailer, _ = tailer_of(tmp_path, b"one\ntwo\n", offset=4)
    assert lines_of(tailer.read(1.0)) == [b"two"]
    tailer.close()


def test_hand_over_continues_the_event_and_the_partial_line_in_the_copy(tmp_path):
    tailer, path = tailer_of(tmp_path, b"S zero\nS one\n a\n b", multiline_start="S")
    assert lines_of(tailer.read(1.0)) == [b"S zero"]
    copy_path = tmp_path / "a.log.1"                  # copytruncate, after more lines
    copy_path.write_bytes(b"S zero\nS one\n a\n b\n c\nS two\n")
    copy_fd = os.open(copy_path, os.O_RDONLY)
    copy_record = CheckpointStore(str(tmp_path), "api").add(
        identify(copy_fd), str(copy_path), tailer.framer.end_offset)
    assert copy_record.offset == len(b"S zero\n")          # at the event held
    copy = FileTailer(tailer.new_framer, str(copy_path), copy_fd, copy_record, 7)
    tailer.hand_over(copy)
    pairs = list(copy.read(2.0))
    assert lines_of(pairs) == [b"S one\n a\n b\n c"]
    assert pairs[0][0].offsets == [7] and pairs[0][1].record is copy_record
    assert lines_of(copy.flush()) == [b"S two"]
    assert copy_record.read_end == os.path.getsize(copy_path)
    assert lines_of(tailer.flush()) == []                  # the original keeps nothing
    copy.close()
    tailer.close()


def test_rewritten_sees_new_bytes_before_the_offset_behind_the_same_header(tmp_path):
    header = b"#Fields: " + b"x" * 300 + b"\n"
    tailer, path = tailer_of(tmp_path, header + b"a 1\na 2\n")
    assert lines_of(tailer.read(1.0))[1:] == [b"a 1", b"a 2"]
    assert not tailer.rewritten()
    with open(path, "ab") as handle:                 # appended: not rewritten
        handle.write(b"a 3\n")
    assert not tailer.rewritten()
    with open(path, "r+b") as handle:                # truncated, written again past us
        handle.truncate(0)
        handle.write(header + b"new 01\nnew 02\nnew 03\n")
    assert tailer.rewritten()
    tailer.close()


def test_rewritten_is_false_before_anything_was_read(tmp_path):
    tailer, _ = tailer_of(tmp_path, b"")
    assert not tailer.rewritten()
    tailer.close()


def test_holds_part_of_a_line_until_its_newline_or_a_flush(tmp_path):
    tailer, path = tailer_of(tmp_path, b"one\npart")
    list(tailer.read(1.0))
    assert tailer.holds_part_of_a_line
    with open(path, "ab") as handle:
        handle.write(b"ial\n")
    assert lines_of(tailer.read(2.0)) == [b"partial"] and not tailer.holds_part_of_a_line
    with open(path, "ab") as handle:
        handle.write(b"last")
    list(tailer.read(3.0))
    assert lines_of(tailer.flush()) == [b"last"] and not tailer.holds_part_of_a_line
    tailer.close()


def test_the_skipped_rest_of_a_cut_line_is_not_part_of_a_line_held(tmp_path):
    tailer, _ = tailer_of(tmp_path, b"0123456789", max_line_bytes=4)
    assert lines_of(tailer.read(1.0)) == [b"0123"]
    assert not tailer.holds_part_of_a_line
    tailer.close()
