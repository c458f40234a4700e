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


# ---- the byte bound (buffer_bytes) ------------------------------------------------------

def test_counts_bytes_and_is_full_at_the_byte_bound_before_the_line_bound():
    buffer = LineBuffer(1000, capacity_bytes=100)
    assert buffer.put(Batch("a", [b"x" * 30, b"y" * 30]))       # 60 bytes
    assert buffer.bytes == 60 and buffer.held_bytes("a") == 60 and not buffer.full()
    assert buffer.put(Batch("a", [b"z" * 50]))                   # admitted: 60 < 100 held
    assert buffer.bytes == 110 and buffer.lines == 3 and buffer.full()
    assert not buffer.put(Batch("a", [b"w"]), block=False)       # 3 lines, but 110 bytes
    waiter = gevent.spawn(buffer.put, Batch("a", [b"v" * 10]))
    gevent.sleep(0)
    assert not waiter.ready()
    [first] = buffer.take(2)                                     # the 60-byte batch leaves
    assert len(first.lines) == 2
    assert waiter.get(timeout=1) is True
    assert (buffer.lines, buffer.bytes, buffer.held_bytes("a")) == (2, 60, 60)


def test_a_batch_larger_than_the_byte_bound_is_admitted_into_an_empty_buffer():
    buffer = LineBuffer(1000, capacity_bytes=100)
    assert buffer.put(Batch("a", [b"x" * 500]), block=False)      # or it would wait forever
    assert buffer.full() and buffer.bytes == 500
    assert not buffer.put(Batch("a", [b"y"]), block=False)
    buffer.take(10)
    assert (buffer.lines, buffer.bytes, buffer.full()) == (0, 0, False)


def test_take_subtracts_exactly_the_bytes_put_per_input():
    buffer = LineBuffer(1000, capacity_bytes=10 ** 6)
    sizes = {"a": 0, "b": 0}
    for i in range(50):
        name = "ab"[i % 2]
        lines = [b"%d" % i * (i + 1), b"q" * i] if i % 3 else [b"%d" % i]
        buffer.put(Batch(name, [line for line in lines if line]))
        sizes[name] += sum(len(line) for line in lines)
    assert buffer.bytes == sum(sizes.values())
    assert buffer.held_bytes("a") == sizes["a"] and buffer.held_bytes("b") == sizes["b"]
    while buffer.lines:
        for batch in buffer.take(3):
            sizes[batch.input] -= sum(map(len, batch.lines))
        assert buffer.held_bytes("a") == sizes["a"] and buffer.held_bytes("b") == sizes["b"]
        assert buffer.bytes == sizes["a"] + sizes["b"]
    assert buffer.bytes == 0 and sizes == {"a": 0, "b": 0}


def test_take_stops_at_about_max_bytes_but_takes_at_least_one_batch():
    buffer = LineBuffer(1000, capacity_bytes=10 ** 9)
    for i in range(10):
        buffer.put(Batch("a", [b"%d" % i + b"x" * 999]))
    taken = buffer.take(512, max_bytes=2500)                     # 3 batches reach 2500
    assert [b.lines[0][:1] for b in taken] == [b"0", b"1", b"2"]
    assert len(buffer.take(512, max_bytes=1)) == 1               # never none
    assert buffer.bytes == 6000


def test_remove_input_gives_back_its_bytes():
    buffer = LineBuffer(1000, capacity_bytes=100)
    buffer.put(Batch("a", [b"x" * 80]))
    buffer.put(Batch("b", [b"y" * 30]))
    assert buffer.full()
    assert [b.lines for b in buffer.remove_input("a")] == [[b"x" * 80]]
    assert (buffer.bytes, buffer.held_bytes("a"), buffer.held_bytes("b")) == (30, 0, 30)
    assert not buffer.full()
    assert buffer.put(Batch("b", [b"z"]), block=False)


def test_a_held_back_input_keeps_to_a_quarter_of_the_bytes():
    buffer = LineBuffer(1000, capacity_bytes=400)
    buffer.hold_back({"bad"})
    assert not buffer.put(Batch("bad", [b"x" * 101]), block=False)   # over 100 bytes
    assert buffer.put(Batch("bad", [b"x" * 60]), block=False)
    assert not buffer.put(Batch("bad", [b"x" * 41]), block=False)   # 60 + 41 > 100
    assert buffer.put(Batch("bad", [b"x" * 40]), block=False)       # exactly its quarter
    assert buffer.put(Batch("good", [b"y" * 250]), block=False)     # the others flow
    waiter = gevent.spawn(buffer.put, Batch("bad", [b"x" * 200]))
    gevent.sleep(0)
    assert not waiter.ready()
    buffer.take(1000, skip={"bad"})
    gevent.sleep(0)
    assert not waiter.ready()                                       # still over its share
    buffer.hold_back(set())
    assert waiter.get(timeout=1) is True
    assert buffer.held_bytes("bad") == 300


def test_without_a_byte_bound_only_lines_count():
    buffer = LineBuffer(2)                                          # the old constructor
    assert buffer.put(Batch("a", [b"x" * 10 ** 6]), block=False)
    assert not buffer.full() and buffer.bytes == 10 ** 6
