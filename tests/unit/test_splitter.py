from tailrabbit.splitter import LineSplitter


def feed_all(splitter, chunks):
    lines, offsets, truncated = [], [], set()
    for chunk in chunks:
        got, offs, trunc = splitter.feed(chunk, want_offsets=True)
        truncated |= {len(lines) + i for i in (trunc or ())}
        lines += got
        offsets += offs
    return lines, offsets, truncated


def test_lines_split_anywhere_keep_bytes_and_offsets():
    data = b"a\n\n bc \r\n\xff\x00z\nlast"
    for size in range(1, len(data) + 1):
        splitter = LineSplitter(100)
        chunks = [data[i:i + size] for i in range(0, len(data), size)]
        lines, offsets, truncated = feed_all(splitter, chunks)
        assert lines == [b"a", b" bc \r", b"\xff\x00z"]
        assert offsets == [0, 3, 9]
        assert not truncated
        assert splitter.offset == 13
        assert splitter.flush() == (b"last", 13)
        assert splitter.offset == len(data)


def test_fast_path_without_offsets():
    splitter = LineSplitter(100)
    assert splitter.feed(b"x\ny\n\nz") == ([b"x", b"y"], None, None)
    assert splitter.offset == 5


def test_long_lines_are_truncated_and_the_rest_skipped_across_reads():
    splitter = LineSplitter(4)
    lines, offsets, truncated = feed_all(splitter, [b"ok\n0123456", b"789", b"abc\nfine\n"])
    assert lines == [b"ok", b"0123", b"fine"]
    assert offsets == [0, 3, 17]
    assert truncated == {1}
    assert splitter.offset == 22


def test_flush_after_a_truncated_tail_gives_nothing_more():
    splitter = LineSplitter(3)
    lines, _, truncated = feed_all(splitter, [b"abcdef"])
    assert lines == [b"abc"] and truncated == {0}
    assert splitter.flush() is None


def test_a_splitter_started_inside_a_line_skips_its_rest_across_reads():
    splitter = LineSplitter(4, offset=10)
    splitter.skip_to_next_line()
    lines, offsets, truncated = feed_all(splitter, [b"xx", b"xxxx", b"x\nok\n\nabcdefg\nz"])
    assert lines == [b"ok", b"abcd"] and offsets == [18, 22] and truncated == {1}
    assert splitter.offset == 30
    assert splitter.flush() == (b"z", 30)


def test_a_splitter_started_inside_a_line_that_never_ends_gives_nothing():
    splitter = LineSplitter(100, offset=3)
    splitter.skip_to_next_line()
    assert splitter.feed(b"rest") == ([], None, None)
    assert splitter.offset == 7 and splitter.flush() is None
