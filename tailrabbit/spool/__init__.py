"""The on-disk spool of FIFO and stdin inputs: store.py (the Spool: append, replay,
confirm), format.py (batches on disk, damage and resync), files.py (private files and
crash-safe writes), restart.py (loading a spool and prepending at a stop)."""

from tailrabbit.spool.store import Spool

__all__ = ["Spool"]
