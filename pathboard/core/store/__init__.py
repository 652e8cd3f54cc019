"""The results database: its schema, writes that never lose a result to a lock, and the reads the
leaderboard and the comparisons make."""
from pathboard.core.store.database import Store

__all__ = ["Store"]
