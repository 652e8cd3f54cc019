"""The leaderboard's reads of the database, each cached per version of the file.

Every read is a function of :mod:`pathboard.core.store.queries`, called directly: ``data.measured(db,
protocol)``. It is cached (``st.cache_data``, shared by every rerun and session) under the file's stamp, the
mtime and size of the database and of its write-ahead log, so the rerun after a run wrote shows its results
and nothing is read twice for one version of the file. Errors are not cached.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable

import streamlit as st

from pathboard.core.store import queries
from pathboard.leaderboard import frames


def db_stamp(path: str) -> tuple:
    """What changes whenever a run writes the database: the mtime and size of the file and of its
    write-ahead log (journalled cells reach readers only once merged into the file)."""
    out = []
    for name in (path, path + ".wal"):
        try:
            info = os.stat(name)
            out.append((info.st_mtime_ns, info.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def per_version(read: Callable, ttl: int = 3600) -> Callable:
    """``read(db, *args)`` cached per version of the database file (at most 48 entries, an hour each);
    ``ttl`` shortens how long an entry lives for reads whose answer changes without a write."""

    def cached(stamp: tuple, db: str, *args):
        return read(db, *args)

    cached.__qualname__ = f"read_{read.__name__}"  # Streamlit keys a cache by the function's qualified name
    cached = st.cache_data(show_spinner=False, max_entries=48, ttl=ttl)(cached)

    @functools.wraps(read)
    def call(db: str, *args):
        return cached(db_stamp(db), db, *args)

    return call


measured = per_version(queries.load_measured)
run_results = per_version(queries.load_run)
variants = per_version(queries.load_variants)
count_variants = per_version(queries.count_variants)
catalog = per_version(queries.load_catalog)
protocols = per_version(queries.protocol_choices)
comparisons = per_version(queries.load_comparisons)
rankings = per_version(queries.load_rankings)
costs = per_version(queries.load_costs)
artifacts = per_version(queries.load_artifacts)
run_detail = per_version(queries.run_detail)
#: re-read every 10 s even when the file has not changed: a run whose process died is shown as interrupted
#: once its process is gone, which writes nothing
runs = per_version(queries.load_runs, ttl=10)


@st.cache_data(show_spinner=False)
def reported():
    """The published numbers shipped with the package (``reported.csv``)."""
    return frames.load_reported()
