"""The on-disk spool of FIFO and stdin inputs (and of a file input's lines no file gives
again, at a stop): store.py (the Spool's state, append), replay.py (replay into the
buffer, confirms, position.json), format.py (batches on disk, damage and resync),
origin.py (a file batch's path and offsets in its header), files.py (private files; crash-safe writes are tailrabbit/atomic.py),
restart.py (loading a spool and prepending at a stop)."""

from tailrabbit.spool.store import Spool

__all__ = ["Spool"]
