"""The reads of the results database: every SQL query the leaderboard, the exports and the run's comparisons
make, next to the schema they query (:mod:`pathboard.core.store.database`), so the schema has one owner.

Each returns a pandas frame (empty, with its columns, for a database that has no such rows or not even the
schema yet) or plain data; none imports the plugins or a model library. The run's own reads (which cells are up
to date, whether anything is there to compare) return plain data, so a run that finds nothing to compare never
imports pandas (~0.3 s).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from pathboard.core.errors import PathboardError
from pathboard.core.store.database import Store

if TYPE_CHECKING:
    import pandas as pd
else:
    class _Pandas:
        """pandas, imported where a frame is first made."""

        def __getattr__(self, name: str):
            import pandas

            return getattr(pandas, name)

    pd = _Pandas()

#: the columns of the database's ``leaderboard`` view
LEADERBOARD_COLUMNS = ["model", "dataset", "task", "prompt_mode", "metric", "value", "ci_low", "ci_high", "n", "q1",
                       "q3", "units", "undefined", "run_id", "created_at", "cell_id", "weights_fingerprint",
                       "prompt_hash", "manifest_hash", "device", "precision", "task_options", "options_hash",
                       "protocol_hash", "default_protocol", "n_items", "headline", "bootstrap", "pack", "pooling"]


def load_measured(db: str | Path, protocol: str = "default") -> pd.DataFrame:
    """The newest result of every cell in the database (the ``leaderboard`` view), as a long frame, of
    one protocol: "default" (pathboard's prompts, every task option at its default), a protocol hash,
    or "all". Numbers of different protocols are never set side by side.

    Raises PathboardError (missing file) or duckdb.Error (not a DuckDB file); a database that has
    no results yet, or not even the schema, gives an empty frame.
    """
    where, params = protocol_sql(protocol)
    try:  # the headline of tasks with variants (few-shot k, MI-Zero top-K) is variant ""
        df = Store(db).query(f"SELECT * FROM leaderboard WHERE coalesce(variant, '') = '' AND {where}"
                             f"{newest_protocol(protocol)} ORDER BY model, dataset, task, prompt_mode, metric, "
                             "protocol_hash", params)
    except duckdb.CatalogException:  # a file no run has written to yet
        return empty_measured()
    return _measured(df)


def _measured(df: pd.DataFrame) -> pd.DataFrame:
    """Headline rows as the leaderboard reads them: every LEADERBOARD_COLUMNS column (a database written
    before a column existed, opened read-only, has not got it: empty), ``source`` "measured"."""
    df = df.drop(columns="variant")
    for column in LEADERBOARD_COLUMNS:
        if column not in df.columns:
            df[column] = None
    df["source"] = "measured"
    return df


def newest_protocol(protocol: str) -> str:
    """A QUALIFY clause over the ``leaderboard`` view that keeps, under the "default" protocol or a protocol pack
    ("pack:ID"), only the rows of each model x dataset x task x prompt mode's newest cell: a task whose protocol
    record changed (a new version describes its method more fully) leaves older cells under another hash in the
    view, and two numbers of one cell would be drawn (stacked bars) or silently pick one. Other protocols are
    one hash each: nothing to drop."""
    if protocol != "default" and not protocol.startswith(PACK):
        return ""
    return (" QUALIFY coalesce(protocol_hash, '') = arg_max(coalesce(protocol_hash, ''), created_at) "
            "OVER (PARTITION BY model, dataset, task, coalesce(prompt_mode, ''))")


#: the prefix of a protocol pack's protocol ("pack:conch"): every cell scored under that pack
PACK = "pack:"


def protocol_sql(protocol: str) -> tuple[str, list]:
    """The rows of one protocol as a WHERE clause over cells' columns, and its parameters: "default"
    (pathboard's prompts, default options; cells from before protocols were stored count as default),
    "pack:ID" (the cells of one protocol pack, every dataset and task of it), a protocol hash, or "all"."""
    if protocol == "default":
        return "coalesce(default_protocol, TRUE)", []
    if protocol.startswith(PACK):
        return "pack = ?", [protocol.removeprefix(PACK)]
    return ("TRUE", []) if protocol == "all" else ("protocol_hash = ?", [protocol])


def protocol_choices(db: str | Path) -> dict[str, str]:
    """Protocols the measured cells were scored under: "default" first, then each protocol pack ("pack:ID"),
    then each other protocol hash -> a short description (prompts, options) for a selector."""
    out = {"default": "default (pathboard's prompts, default task options)"}
    try:
        store = Store(db)
        packs = store.query("SELECT DISTINCT pack FROM cells WHERE pack IS NOT NULL ORDER BY pack")
        rows = store.query("""
            SELECT DISTINCT protocol_hash, task, protocol->>'$.prompts' AS prompts,
                   CAST(protocol->'$.options' AS VARCHAR) AS options
            FROM cells WHERE NOT coalesce(default_protocol, TRUE) AND pack IS NULL ORDER BY task, prompts, options""")
    except (duckdb.Error, PathboardError):  # no cells yet, or a database from before packs (no column)
        return out
    for pack in packs["pack"]:
        out[PACK + pack] = f"protocol pack {pack} (the paper's prompts, options and datasets)"
    for row in rows.itertuples():
        out[row.protocol_hash] = f"{row.task}: {row.prompts} prompts, options {row.options} [{row.protocol_hash[:8]}]"
    return out


def load_catalog(db: str | Path) -> dict:
    """Titles and model cards as the runs stored them (newest wins): the leaderboard never imports the
    plugins (nor torch). {"models": {id: card}, "datasets": {id: {"title", ...}}, "tasks": {id: {...}}}."""
    out: dict = {"models": {}, "datasets": {}, "tasks": {}}
    try:
        rows = Store(db).query("SELECT catalog FROM runs WHERE catalog IS NOT NULL ORDER BY started_at")
    except (duckdb.Error, PathboardError):  # no runs yet, or a database from before catalogs were stored
        return out
    for blob in rows["catalog"]:
        for kind, entries in json.loads(blob).items():
            out.setdefault(kind, {}).update(entries)
    return out


def empty_measured() -> pd.DataFrame:
    return pd.DataFrame(columns=LEADERBOARD_COLUMNS + ["source"])


def load_comparisons(db: str | Path) -> pd.DataFrame:
    """Paired bootstrap comparisons between measured models (empty for databases without any)."""
    try:
        return Store(db).query("SELECT * FROM comparisons WHERE variant = ''")
    except duckdb.CatalogException:
        return pd.DataFrame(columns=["model_a", "model_b", "dataset", "task", "prompt_mode", "metric", "diff",
                                     "ci_low", "ci_high", "n", "significant"])


def load_variants(db: str | Path, task: str | tuple[str, ...], protocol: str = "default",
                  variant: str | None = None) -> pd.DataFrame:
    """Every variant of ``task``'s newest cells (the ``leaderboard`` view), of one protocol (see
    :func:`load_measured`), or only ``variant``; empty when there are none. ``task`` may be several tasks.
    The filters run in the database: the view holds every task's variants (about 10^5 rows at scale)."""
    where, params = _variants_where(task, protocol, variant)
    try:
        return Store(db).query(f"SELECT * FROM leaderboard WHERE {where}{newest_protocol(protocol)} "
                               "ORDER BY model, dataset, variant, metric", params)
    except (duckdb.CatalogException, PathboardError):
        return pd.DataFrame(columns=[*LEADERBOARD_COLUMNS, "variant"])


def count_variants(db: str | Path, task: str | tuple[str, ...], protocol: str = "all") -> int:
    """How many result rows ``task`` has (every variant) under ``protocol``: 0 when none, or no database."""
    where, params = _variants_where(task, protocol)
    try:
        return int(Store(db).query(f"SELECT count(*) AS n FROM (SELECT * FROM leaderboard WHERE {where}"
                                   f"{newest_protocol(protocol)})", params)["n"].iloc[0])
    except (duckdb.CatalogException, PathboardError):
        return 0


def _variants_where(task: str | tuple[str, ...], protocol: str, variant: str | None = None) -> tuple[str, list]:
    """The WHERE clause (and its parameters) of one or several tasks' rows of ``protocol``, or of one variant."""
    tasks = [task] if isinstance(task, str) else list(task)
    where, params = protocol_sql(protocol)
    sql = f"task IN ({', '.join('?' * len(tasks))}) AND {where}" + (" AND variant = ?" if variant is not None else "")
    return sql, tasks + params + ([variant] if variant is not None else [])


def load_rankings(db: str | Path) -> pd.DataFrame:
    try:
        return Store(db).query("SELECT * FROM prompt_rankings ORDER BY dataset, family, model")
    except (duckdb.CatalogException, PathboardError):
        return pd.DataFrame(columns=["dataset", "protocol_hash", "metric", "family", "n_models", "n_draws",
                                     "kendall_tau", "model", "first_rate", "median_rank"])


def load_costs(db: str | Path) -> pd.DataFrame:
    try:
        return Store(db).query("SELECT * FROM costs ORDER BY created_at")
    except (duckdb.CatalogException, PathboardError):
        return pd.DataFrame()


def load_runs(db: str | Path) -> pd.DataFrame:
    """Every run, newest first, as ``pathboard runs`` lists them, with the count of files it could not read."""
    try:
        store = Store(db)
        runs = store.run_rows()
        files = store.query("SELECT run_id, skipped_files FROM runs")
    except (duckdb.CatalogException, duckdb.BinderException):
        return pd.DataFrame(columns=["run_id", "started_at", "status", "seconds", "cells", "skipped", "failed_files",
                                     "image_forwards", "device", "precision", "host", "pid", "command"])
    counts = {r.run_id: sum(len(v) for v in _json(r.skipped_files, {}).values()) for r in files.itertuples()}
    runs.insert(6, "failed_files", [counts.get(r, 0) for r in runs["run_id"]])
    try:  # what each run embedded, in images and tiles (image_forwards counts batches)
        embedded = store.query("SELECT run_id, sum(images) AS images, sum(tiles) AS tiles FROM costs GROUP BY run_id")
    except duckdb.CatalogException:
        embedded = pd.DataFrame(columns=["run_id", "images", "tiles"])
    return runs.merge(embedded, on="run_id", how="left")


def run_detail(db: str | Path, run_id: str) -> dict:
    """One run's record: its skipped cells and unreadable files with their reasons, the package versions it
    ran with, and what its embedding cost."""
    store = Store(db)
    row = store.query("SELECT * FROM runs WHERE run_id = ?", [run_id])
    if row.empty:
        raise PathboardError(f"no run {run_id} in {db}")
    r = row.iloc[0]
    files = [{"dataset": d, "file": f, "reason": why} for d, items in _json(r["skipped_files"], {}).items()
             for f, why in items.items()]
    try:
        costs = store.query("SELECT model, dataset, images, tiles, images_per_s, tiles_per_s, peak_memory_bytes, "
                            "wall_seconds FROM costs WHERE run_id = ? ORDER BY model, dataset", [run_id])
    except duckdb.CatalogException:
        costs = pd.DataFrame()
    provenance = {k: r[k] for k in ("pathboard_version", "host", "device", "precision", "batch_size", "data_root")
                  if k in r.index}
    return {"skipped": list(_json(r["skipped_cells"], [])), "files": pd.DataFrame(files, columns=[
        "dataset", "file", "reason"]), "packages": _json(r["packages"], {}), "costs": costs,
        "provenance": provenance, "command": r["command"] or ""}


def _json(value, default):
    """A JSON column's value; ``default`` for NULL (pandas gives NaN)."""
    return json.loads(value) if isinstance(value, str) and value else default


def load_run(db: str | Path, run_id: str, protocol: str = "default") -> pd.DataFrame:
    """The headline results of one run only (what the leaderboard shows when filtered by run)."""
    where, params = protocol_sql(protocol)
    df = Store(db).query(f"SELECT * FROM results_all WHERE run_id = ? AND coalesce(variant, '') = '' AND {where} "
                         "ORDER BY model, dataset, task, prompt_mode, metric", [run_id] + params)
    return _measured(df)


def load_artifacts(db: str | Path, protocol: str = "default") -> pd.DataFrame:
    """The files the newest cell of each model x dataset x task x prompt mode wrote (MI-Zero heatmaps and
    top tiles, segmentation panels): model, dataset, task, prompt_mode, item, kind, path."""
    columns = ["model", "dataset", "task", "prompt_mode", "item", "kind", "path"]
    where, params = protocol_sql(protocol)  # of the cells: artifacts have no protocol columns of their own
    try:
        return Store(db).query(f"""
            SELECT c.model, c.dataset, c.task, coalesce(c.prompt_mode, '') AS prompt_mode, a.item, a.kind, a.path
            FROM artifacts a JOIN cells c USING (cell_id) WHERE {where}
            QUALIFY row_number() OVER (PARTITION BY c.model, c.dataset, c.task, coalesce(c.prompt_mode, ''), a.item,
                                       a.kind, coalesce(c.protocol_hash, '') ORDER BY c.created_at DESC) = 1
            ORDER BY c.dataset, a.item, c.model""", params)
    except duckdb.CatalogException:
        return pd.DataFrame(columns=columns)


def latest_predictions(store: Store) -> pd.DataFrame:
    """The newest cell of every model, dataset, task, variant, prompt mode and protocol that stored
    predictions, with them: what the paired comparisons pair. Their truth, items and groups are in ``lists``
    (:meth:`Store.add_cells`), or inline in rows stored before it, and in every row of a database this version
    has not written to yet (its writes still journalled behind a reader)."""
    newest = """QUALIFY row_number() OVER (PARTITION BY c.model, c.dataset, c.task, c.variant,
                                                    coalesce(c.prompt_mode, ''), coalesce(c.protocol_hash, '')
                                       ORDER BY c.created_at DESC) = 1"""
    cell = """c.cell_id, c.model, c.dataset, c.task, c.variant, coalesce(c.prompt_mode, '') AS prompt_mode,
              coalesce(c.protocol_hash, '') AS protocol_hash, p.y_pred, p.n_classes, p.ordinal"""
    try:
        return store.query(f"""
            SELECT {cell}, coalesce(p.y_true, t.labels) AS y_true, coalesce(p.items, i.names) AS items,
                   coalesce(p.groups, g.names) AS groups
            FROM cells c JOIN predictions p USING (cell_id) LEFT JOIN lists t ON t.key = p.y_true_key
                 LEFT JOIN lists i ON i.key = p.items_key LEFT JOIN lists g ON g.key = p.groups_key
            WHERE coalesce(p.y_true, t.labels) IS NOT NULL  -- a key whose list is gone (a replaced file) pairs nothing
            {newest}""")
    except (duckdb.CatalogException, duckdb.BinderException):  # no lists table, or no keys, yet
        return store.query(f"""
            SELECT {cell}, p.y_true, p.items, p.groups FROM cells c JOIN predictions p USING (cell_id) {newest}""")


def prompt_draws(store: Store, task: str, metric: str) -> pd.DataFrame:
    """The newest value of ``metric`` under each of ``task``'s prompt draws (``template=``, ``synonym=`` and
    ``subset=N/draw=R`` variants), per model, dataset and protocol: what the rankings rank."""
    return store.query("""
        SELECT model, dataset, variant, coalesce(protocol_hash, '') AS protocol_hash, value FROM leaderboard
        WHERE task = ? AND metric = ? AND (variant LIKE 'template=%' OR variant LIKE 'synonym=%'
                                           OR variant LIKE 'subset=%/draw=%')""", [task, metric])


def current_cell_keys(store: Store) -> dict[tuple, str]:
    """(model, dataset, task, prompt mode, options hash, prompt hash, protocol pack) -> the key of the newest cell
    stored for it (:mod:`pathboard.core.engine.uptodate`); cells of older databases, stored without a key, are never
    up to date."""
    if not store.path.is_file():
        return {}
    if store.pending():  # cells a killed run or a held file left in the journal count too
        store.settle(patience=5.0)
    try:
        rows = store.rows("""
            SELECT model, dataset, task, prompt_mode, options_hash, prompt_hash, pack, cell_key FROM cells
            WHERE coalesce(variant, '') = ''
            QUALIFY row_number() OVER (PARTITION BY model, dataset, task, coalesce(prompt_mode, ''),
                                                    coalesce(options_hash, ''), coalesce(prompt_hash, ''),
                                                    coalesce(pack, '')
                                       ORDER BY created_at DESC) = 1""")
    except (duckdb.CatalogException, duckdb.BinderException):  # no cells table yet, or one without keys
        return {}
    except PathboardError as exc:  # another run holds the file for writing: score everything, as before keys
        if "lock" in str(exc).lower():
            return {}
        raise
    return {tuple(row[:7]): row[7] for row in rows if isinstance(row[7], str)}


def comparisons_current(store: Store) -> bool:
    """Whether the comparisons and rankings were computed after the newest cell was stored: some run that
    finished (and so compared) did so after it. A run killed between storing and comparing leaves them stale."""
    try:
        (newest_cell, newest_finish), = store.rows("""
            SELECT (SELECT max(created_at) FROM cells),
                   (SELECT max(finished_at) FROM runs WHERE status LIKE 'finished%')""")
    except duckdb.CatalogException:
        return False
    return newest_cell is None or (newest_finish is not None and newest_finish >= newest_cell)


def anything_to_compare(store: Store, task: str, metric: str) -> tuple[bool, bool, bool, bool]:
    """(whether :func:`latest_predictions` holds two models' cells of one dataset, task, variant, prompt mode and
    protocol; whether :func:`prompt_draws` holds two models' draws of one dataset and protocol; whether comparisons
    are stored; whether rankings are): without the first two the comparisons and rankings are empty, and neither
    needs reading, nor, when none are stored, writing."""
    try:
        (pairs, ranked, compared, rankings), = store.rows("""
            SELECT (SELECT count(*) FROM (
                        SELECT c.dataset FROM cells c JOIN predictions p USING (cell_id)
                        GROUP BY c.dataset, c.task, c.variant, coalesce(c.prompt_mode, ''),
                                 coalesce(c.protocol_hash, '')
                        HAVING count(DISTINCT c.model) > 1)),
                   (SELECT count(*) FROM (
                        SELECT dataset FROM leaderboard
                        WHERE task = ? AND metric = ? AND (variant LIKE 'template=%' OR variant LIKE 'synonym=%'
                                                           OR variant LIKE 'subset=%/draw=%')
                        GROUP BY dataset, coalesce(protocol_hash, '') HAVING count(DISTINCT model) > 1)),
                   (SELECT count(*) FROM comparisons), (SELECT count(*) FROM prompt_rankings)""", [task, metric])
    except duckdb.CatalogException:
        return False, False, True, True
    return pairs > 0, ranked > 0, compared > 0, rankings > 0
