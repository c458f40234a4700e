"""Which new glob matches are copies of a tailed file (issue 8, items 4 and 9)."""

import logging
import os

import pytest

from tailrabbit.files import copies
from tailrabbit.files.copies import CopyJudge
from tailrabbit.files.identity import identify
from tailrabbit.files.rotated import looks_rotated
from tailrabbit.stats import InputStats

HEADER = b"#Fields: " + b" ".join(b"cs-field-%02d" % i for i in range(30)) + b"\n"


class Record:
    def __init__(self, identity):
        self.identity = identity


class Tailed:
    """A tailed file as the judge sees it: path, descriptor, how far it was read."""

    def __init__(self, path):
        self.path = str(path)
        self.fd = os.open(self.path, os.O_RDONLY)
        self.read_pos = os.fstat(self.fd).st_size
        self.record = Record(identify(self.fd))

    @property
    def inode(self):
        st = os.fstat(self.fd)
        return (st.st_dev, st.st_ino)

    def size(self):
        return os.fstat(self.fd).st_size


@pytest.fixture
def judge_of(tmp_path):
    opened = []

    def offset(judge, path, tracked, now=0.0):
        fd = os.open(path, os.O_RDONLY)
        opened.append(fd)
        return judge.offset(str(path), fd, identify(fd), os.fstat(fd).st_size, tracked, now)
    yield offset
    for fd in opened:
        os.close(fd)


def lines(first, count):
    return b"".join(b"%s %04d\n" % (first, i) for i in range(count))


def test_a_new_file_with_the_same_long_header_is_new(tmp_path, judge_of):
    """Same first 256 bytes, another name: it was judged a copy and never shipped."""
    (tmp_path / "u_ex261126.log").write_bytes(HEADER + lines(b"day one", 50))
    (tmp_path / "u_ex261127.log").write_bytes(HEADER + lines(b"day two", 5))
    tracked = [Tailed(tmp_path / "u_ex261126.log")]
    assert len(HEADER) > 256
    assert judge_of(CopyJudge("api"), tmp_path / "u_ex261127.log", tracked) == 0


def test_a_short_new_file_equal_to_the_start_of_a_tracked_one_is_new(tmp_path, judge_of):
    (tmp_path / "a.log").write_bytes(HEADER + lines(b"a", 50))
    (tmp_path / "b.log").write_bytes(HEADER[:40])
    (tmp_path / "c.log").write_bytes(b"")
    tracked = [Tailed(tmp_path / "a.log")]
    judge = CopyJudge("api")
    assert judge_of(judge, tmp_path / "b.log", tracked) == 0
    assert judge_of(judge, tmp_path / "c.log", tracked) == 0


def test_a_rotated_name_with_other_lines_after_the_header_is_new(tmp_path, judge_of):
    (tmp_path / "a.log").write_bytes(HEADER + lines(b"a", 50))
    (tmp_path / "a.log.1").write_bytes(HEADER + lines(b"b", 50))
    tracked = [Tailed(tmp_path / "a.log")]
    assert judge_of(CopyJudge("api"), tmp_path / "a.log.1", tracked) == 0


def test_a_copy_in_progress_stays_a_copy_until_it_departs(tmp_path, judge_of, caplog):
    content = HEADER + lines(b"a", 50)
    (tmp_path / "a.log").write_bytes(content)
    tracked = [Tailed(tmp_path / "a.log")]
    stats = InputStats()
    judge = CopyJudge("api", stats)
    copy = tmp_path / "a.log-20261127"
    for size in (0, 10, 300, len(content)):                # cp writes it bit by bit
        copy.write_bytes(content[:size])
        assert judge_of(judge, copy, tracked) is None, size
    with open(copy, "ab") as handle:                        # then lines of its own
        handle.write(b"late line\n")
    with open(tmp_path / "a.log", "ab") as handle:
        handle.write(b"a goes on\n")
    with caplog.at_level(logging.WARNING):
        assert judge_of(judge, copy, tracked) == len(content)
    assert judge.skipped_lines == 51 and "its first 51 lines" in caplog.text
    assert stats.skipped == 51          # in the stats line and tailrabbit_lines_skipped_total


def test_a_copy_longer_than_its_idle_original_departs_after_settling(tmp_path, judge_of):
    content = HEADER + lines(b"a", 5)
    (tmp_path / "a.log").write_bytes(content)
    (tmp_path / "a.log.1").write_bytes(content + b"own line\n")
    tracked = [Tailed(tmp_path / "a.log")]
    judge = CopyJudge("api")
    assert judge_of(judge, tmp_path / "a.log.1", tracked, now=0.0) is None
    assert judge_of(judge, tmp_path / "a.log.1", tracked, now=1.0) is None
    assert judge_of(judge, tmp_path / "a.log.1", tracked,
                    now=copies.COPY_SETTLE + 0.1) == len(content)


def test_an_original_truncated_while_judging_leaves_the_match_undecided(tmp_path, judge_of):
    """logrotate truncates beside us: the truncation handler, not the judge, decides."""
    content = HEADER + lines(b"a", 50)
    (tmp_path / "a.log").write_bytes(content)
    (tmp_path / "a.log.1").write_bytes(content)
    tracked = [Tailed(tmp_path / "a.log")]
    os.truncate(tmp_path / "a.log", 0)
    judge = CopyJudge("api")
    assert judge_of(judge, tmp_path / "a.log.1", tracked) is None
    assert "a.log.1" in os.path.basename(next(iter(judge.watches)))


def test_rotated_names():
    assert looks_rotated("/l/a.log.1", "/l/a.log")
    assert looks_rotated("/l/a.log-20261127", "/l/a.log")
    assert not looks_rotated("/l/a.log.2.gz", "/l/a.log")
    assert not looks_rotated("/l/a.log", "/l/a.log")
    assert not looks_rotated("/l/a.logger", "/l/a.log")
    assert not looks_rotated("/l/b.log.1", "/l/a.log")
    # logrotate's `extension .log` keeps the extension last
    assert looks_rotated("/l/a.1.log", "/l/a.log")
    assert looks_rotated("/l/a-20261127.log", "/l/a.log")
    assert not looks_rotated("/l/a.1.log.gz", "/l/a.log")
    assert not looks_rotated("/l/b.1.log", "/l/a.log")
    assert not looks_rotated("/l/a.1.txt", "/l/a.log")


def test_rotated_names_with_the_extension_kept_last(tmp_path):
    from tailrabbit.files.rotated import rotated_names
    for name in ("a.log", "a.log.1", "a.1.log", "a-20261127.log", "a.2.log.gz", "b.1.log"):
        (tmp_path / name).write_bytes(b"x\n")
    found = {os.path.basename(n) for n in rotated_names(str(tmp_path / "a.log"))}
    assert found == {"a.log.1", "a.1.log", "a-20261127.log"}
