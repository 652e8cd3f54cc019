"""plan -> embed (cached) -> score -> store. The runner owns the loop; plugins own the science.

The stages live in their own modules: :mod:`pathboard.core.selection` (what ``--models``,
``--datasets`` and ``--tasks`` name), :mod:`pathboard.core.plan` (every cell and the embeddings it
reads, before anything runs) and :mod:`pathboard.core.execute` (embed, score, store).
"""
from pathboard.core.execute import LazyModel, Summary, execute
from pathboard.core.plan import Cell, Plan, RunConfig, plan
from pathboard.core.selection import Selection, select

__all__ = ["Cell", "LazyModel", "Plan", "RunConfig", "Selection", "Summary", "execute", "plan", "select"]
