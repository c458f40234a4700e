"""A batch's mark confirms itself: a file checkpoint moves (never back over a truncation),
a spool's confirmed position moves; spool batches are no longer unpacked as records."""

from tailrabbit.files.checkpoints import CheckpointStore
from tailrabbit.files.identity import FileIdentity
from tailrabbit.line import Batch
from tailrabbit.marks import FilePosition, SpoolPosition


def test_a_file_position_moves_its_checkpoint_unless_the_file_was_truncated_since(tmp_path):
    store = CheckpointStore(str(tmp_path), "api")
    record = store.add(FileIdentity(1, 2, "ab" * 8, 8), "/l/a.log", 0)
    before = Batch("api", [b"a"], offsets=[0], source=FilePosition(record), end_offset=10)
    assert before.path == "/l/a.log"
    before.source.confirmed(before)
    assert record.offset == 10
    late = Batch("api", [b"b"], offsets=[10], source=FilePosition(record), end_offset=20)
    record.restart(0)                        # truncated: a new generation
    late.source.confirmed(late)
    assert record.offset == 0


def test_a_spool_position_confirms_its_segment_and_end():
    calls = []

    class Spool:
        def confirm(self, segment, end):
            calls.append((segment, end))
    batch = Batch("web", [b"a"], source=SpoolPosition(Spool(), 3), end_offset=42)
    assert batch.path is None
    batch.source.confirmed(batch)
    assert calls == [(3, 42)]
