"""Where a run's seconds go: named stages, each timed exclusive of the stages nested in it.

Code that does a stage's work wraps it in ``with stage("grouping"):``, wherever it runs (planning, the
embedder, the science). A stage nested in another (loading the model inside embedding images) is counted once,
in the inner stage, so the stages add up to the wall time they cover. ``pathboard run`` prints one line per
stage that took any time (:func:`lines`); a Ray worker returns its own stages (:func:`take`) and the driver
adds them in (:func:`add`).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

#: every stage, in the order a run goes through them (and its summary lists them)
STAGES = ("manifests", "grouping", "tiling plans", "model load", "image embedding", "tile embedding",
          "slide encoding", "prompt encoding", "scoring", "storing", "comparisons", "rankings")

_seconds: dict[str, float] = {}
_local = threading.local()


@contextmanager
def stage(name: str):
    """Time the block as stage ``name`` (one of :data:`STAGES`), less the stages nested in it."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; one of {', '.join(STAGES)}")
    stack = _local.__dict__.setdefault("stack", [])
    stack.append(0.0)  # seconds spent in nested stages
    start = time.perf_counter()
    try:
        yield
    finally:
        spent = time.perf_counter() - start
        nested = stack.pop()
        _seconds[name] = _seconds.get(name, 0.0) + spent - nested
        if stack:
            stack[-1] += spent


def take() -> dict[str, float]:
    """The seconds of every stage so far, and start again from zero."""
    out = dict(_seconds)
    _seconds.clear()
    return out


def add(seconds: dict[str, float]) -> None:
    """Count stages timed elsewhere (a Ray worker's) as this process's."""
    for name, s in seconds.items():
        _seconds[name] = _seconds.get(name, 0.0) + s


def lines(seconds: dict[str, float]) -> list[str]:
    """``time: grouping          12.31 s  (41%)``: one line per stage that took any time, in run order."""
    total = sum(seconds.values())
    return [f"time: {name:<16}{seconds[name]:8.2f} s  ({seconds[name] / total:4.0%})"
            for name in STAGES if seconds.get(name, 0.0) >= 0.005]
