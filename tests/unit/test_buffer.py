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


def test_a_held_back_input_keeps_to_a_quarter_even_with_a_large_batch():
    buffer = LineBuffer(400)
    buffer.hold_back({"bad"})
    assert not buffer.put(Batch("bad", [b"x"] * 1000), block=False)   # over its share
    assert buffer.put(Batch("bad", [b"x"] * 100), block=False)
    assert not buffer.put(Batch("bad", [b"x"]), block=False)
    assert buffer.put(Batch("good", [b"y"] * 300), block=False)      # the others flow
    waiter = gevent.spawn(buffer.put, Batch("bad", [b"x"] * 1000))
    gevent.sleep(0)
    assert not waiter.ready()
    buffer.take(1000, skip={"bad"})                                 # good lines leave
    gevent.sleep(0)
    assert not waiter.ready()                                       # still over its share
    buffer.hold_back(set())                                         # declared at last
    assert waiter.get(timeout=1) is True
    assert buffer.held("bad") == 1100
