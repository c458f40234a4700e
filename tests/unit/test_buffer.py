import gevent

from tailrabbit.buffer import LineBuffer
from tailrabbit.line import Batch


def test_counts_lines_and_blocks_when_full():
    buffer = LineBuffer(5)
    assert buffer.put(Batch("a", [b"1"] * 3))
    assert buffer.put(Batch("a", [b"2"] * 3))          # admitted: 3 < 5 held
    assert buffer.lines == 6 and buffer.full()
    assert not buffer.put(Batch("a", [b"3"]), block=False)
    waiter = gevent.spawn(buffer.put, Batch("a", [b"4"]))
    gevent.sleep(0)
    assert not waiter.ready()
    assert len(buffer.take(3)) == 1
    assert waiter.get(timeout=1) is True


def test_take_round_robins_inputs_and_skips_held_back_ones():
    buffer = LineBuffer(100)
    for name in "aab":
        buffer.put(Batch(name, [name.encode()]))
    assert [b.input for b in buffer.take(10, skip={"a"})] == ["b"]
    assert not buffer.readable.is_set()
    assert [b.input for b in buffer.take(10)] == ["a", "a"]
    assert buffer.lines == 0
