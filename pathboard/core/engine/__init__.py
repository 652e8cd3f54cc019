"""The engine: plan -> embed (cached) -> score -> store. It owns the loop; plugins own the science.

:mod:`~pathboard.core.engine.plugins` loads the plugins, :mod:`~pathboard.core.engine.selection` says what
``--models``, ``--datasets`` and ``--tasks`` name, :mod:`~pathboard.core.engine.plan` names every cell and
the embeddings it reads before anything runs, and :mod:`~pathboard.core.engine.run` runs a plan with the
shared :mod:`~pathboard.core.engine.steps`, here (:mod:`~pathboard.core.engine.local`) or on Ray
(:mod:`~pathboard.core.engine.distributed`).
"""
