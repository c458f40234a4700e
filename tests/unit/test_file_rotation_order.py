"""FileInput in-process, time passed explicitly: what a file rotated away holds goes out
before the new file's lines (inputs/file_rotation.py). The broker is a buffer that confirms
every batch at once, as in test_logfile_model.py."""

import os

import pytest

from tailrabbit.inputs.logfile import FileInput
from tailrabbit.settings import InputSettings
from tailrabbit.stats import Stats


from unit.test_logfile_model import ConfirmingBuffer  # noqa: E402


def append(path, data):
    with open(path, "ab") as handle:
        handle.write(data)


@pytest.fixture
def make_input(tmp_path):
    made = []

    def make(buffer, **keys):
        settings = InputSettings(name="api", type="file", path=str(tmp_path / "api.log"),
                                 queue="q", start_at="beginning", **keys)
        item = FileInput(settings, buffer, Stats(["api"]), str(tmp_path / "state"))
        item.start(0.0)
        made.append(item)
        return item

    yield make
    for item in made:
        item.close()


def test_the_new_files_lines_wait_for_the_old_files_unterminated_line(tmp_path, make_input):
    path = str(tmp_path / "api.log")
    append(path, b"old 1\nold 2 unterminated")
    buffer = ConfirmingBuffer()
    item = make_input(buffer, rotate_wait=5.0)
    item.poll(1.0)
    os.rename(path, path + ".1")
    append(path, b"new 1\n")
    item.poll(2.0)
    item.poll(5.9)                                   # the old file quiet 4.9 s: it waits
    assert buffer.lines == [b"old 1"]
    item.poll(6.0)                                   # quiet 5 s: its last line is whole
    assert buffer.lines == [b"old 1", b"old 2 unterminated", b"new 1"]


def test_a_line_finished_in_the_old_file_goes_out_whole_and_first(tmp_path, make_input):
    path = str(tmp_path / "api.log")
    append(path, b"old 1\nold 2 unter")
    buffer = ConfirmingBuffer()
    item = make_input(buffer, rotate_wait=5.0)
    item.poll(1.0)
    os.rename(path, path + ".1")
    append(path, b"new 1\n")
    item.poll(2.0)
    append(path + ".1", b"minated\n")               # a writer still holding it
    item.poll(3.0)
    assert buffer.lines == [b"old 1", b"old 2 unterminated", b"new 1"]


def test_an_event_whose_continuation_is_unterminated_waits_for_it(tmp_path, make_input):
    path = str(tmp_path / "api.log")
    append(path, b"0 zero\n1 start\n  cont")
    buffer = ConfirmingBuffer()
    item = make_input(buffer, rotate_wait=5.0, multiline_start=r"\d ",
                      multiline_timeout=30.0)
    item.poll(1.0)
    os.rename(path, path + ".1")
    append(path, b"2 next\n3 more\n")
    item.poll(2.0)
    append(path + ".1", b"inued\n")
    item.poll(3.0)
    assert buffer.lines == [b"0 zero", b"1 start\n  continued", b"2 next"]


def test_rotate_wait_zero_defers_nothing(tmp_path, make_input):
    path = str(tmp_path / "api.log")
    append(path, b"old 1\nold 2 unterminated")
    buffer = ConfirmingBuffer()
    item = make_input(buffer, rotate_wait=0.0)
    item.poll(1.0)
    os.rename(path, path + ".1")
    append(path, b"new 1\n")
    item.poll(2.0)
    assert buffer.lines == [b"old 1", b"old 2 unterminated", b"new 1"]


def test_a_file_rotated_while_stopped_ends_its_event_when_the_new_file_grows(
        tmp_path, make_input):
    path = str(tmp_path / "api.log")
    append(path, b"0 zero\n1 start\n  cont\n")
    keys = {"rotate_wait": 5.0, "multiline_start": r"\d ", "multiline_timeout": 30.0}
    buffer = ConfirmingBuffer()
    first = make_input(buffer, **keys)
    first.poll(1.0)
    assert buffer.lines == [b"0 zero"]
    first.close()
    first.save_checkpoints()
    os.rename(path, path + ".1")                     # while stopped
    append(path, b"2 next\n3 more\n")
    second = make_input(buffer, **keys)
    second.poll(2.0)
    assert buffer.lines == [b"0 zero", b"1 start\n  cont", b"2 next"]
