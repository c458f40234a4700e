"""A pipe reader's unfinished line handed to the next reader (inputs/handover.py): the
framer gives back exactly the bytes it held, raw, and a new framer resumes as if it had
read them itself; the stop's file keeps them across a restart."""

import os

import gevent
from hypothesis import given, settings as hsettings, strategies as st

from tailrabbit.framing import Carry, Framer
from tailrabbit.inputs.handover import (Handover, save_unfinished, take_unfinished,
                                        unfinished_path)
from tailrabbit.settings import InputSettings


def input_settings(**overrides):
    values = {"name": "in", "type": "fifo", "path": "/tmp/x.fifo", "queue": "q"}
    values.update(overrides)
    return InputSettings(**values)


def lines_of(framed_list):
    return [line for framed in framed_list for line in framed.lines]


@hsettings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"")),
       cut=st.integers(0, 300), limit=st.sampled_from([4, 16, 1000]))
def test_a_stream_handed_over_at_any_byte_frames_as_if_read_by_one_reader(data, cut, limit):
    """Bytes up to `cut` read by one framer, its unfinished part handed to a second one
    that reads the rest: the same lines, truncation included, as one framer reading all."""
    settings = input_settings(max_line_bytes=limit)
    whole = Framer(settings)
    expected = lines_of([whole.feed(data), whole.flush()])
    first, second = Framer(settings), Framer(settings)
    out = [first.feed(data[:cut])]
    out.append(second.resume(first.take_back()))
    out += [second.feed(data[cut:]), second.flush()]
    assert lines_of(out) == expected
    assert lines_of([first.flush()]) == []        # the first holds nothing any more


def test_a_held_multiline_event_is_handed_over_whole():
    settings = input_settings(multiline="python", multiline_timeout=30)
    first = Framer(settings)
    out = [first.feed(b"INFO a\nERROR boom\nTraceback (most recent call last):\n  File")]
    carry = first.take_back()
    assert carry == Carry(b"ERROR boom\nTraceback (most recent call last):\n  File", False)
    second = Framer(settings)
    out += [second.resume(carry), second.feed(b' "x"\nKeyError: 1\nINFO b\n'),
            second.flush()]
    assert lines_of(out) == [b"INFO a", b"ERROR boom\nTraceback (most recent call last):\n"
                             b'  File "x"\nKeyError: 1', b"INFO b"]


def test_the_rest_of_a_cut_line_is_still_skipped_after_a_handover():
    settings = input_settings(max_line_bytes=4)
    first = Framer(settings)
    out = [first.feed(b"abcdefgh")]                 # cut: "abcd", skipping the rest
    carry = first.take_back()
    assert carry == Carry(b"", True)
    second = Framer(settings)
    out += [second.resume(carry), second.feed(b"ij\nnext\n"), second.flush()]
    assert lines_of(out) == [b"abcd", b"next"]


def test_the_kept_line_survives_a_restart_once(tmp_path):
    directory = str(tmp_path / "spool" / "web")
    save_unfinished(directory, Carry(b"first half|\x00\xff", False))
    assert oct(os.stat(unfinished_path(directory)).st_mode & 0o777) == "0o600"
    assert oct(os.stat(directory).st_mode & 0o777) == "0o700"
    assert take_unfinished(directory) == Carry(b"first half|\x00\xff", False)
    assert take_unfinished(directory) is None       # taken: the reader holds it now


def test_no_kept_line_and_no_spool_directory_are_none(tmp_path):
    assert take_unfinished(str(tmp_path / "missing")) is None
    (tmp_path / "file").write_bytes(b"")
    assert take_unfinished(str(tmp_path / "file")) is None   # a file where the dir goes


def test_a_handover_waits_for_the_old_reader_and_the_first_give_counts():
    handover = Handover()
    taken = gevent.spawn(handover.take)
    gevent.sleep(0)
    assert not taken.ready()                        # the new reader waits
    handover.give(Carry(b"part", False))
    handover.give(None)                             # the replacer's "held none": ignored
    assert taken.get(timeout=1) == Carry(b"part", False)
