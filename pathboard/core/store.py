"""Results in DuckDB: runs (provenance), cells (one model x dataset x task x prompt mode), results,
and what each model cost to run (``costs``: one row per model and dataset of a run).

Every write opens the file, commits one short transaction and closes it, so another process
(the leaderboard) can open the file read-only between writes.
"""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from pathboard.core.errors import PathboardError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, status VARCHAR,
    command VARCHAR, pathboard_version VARCHAR, packages JSON, host VARCHAR, device VARCHAR,
    precision VARCHAR, batch_size INTEGER, data_root VARCHAR, image_forwards INTEGER,
    skipped_cells JSON, skipped_files JSON);
CREATE TABLE IF NOT EXISTS cells (
    cell_id VARCHAR PRIMARY KEY, run_id VARCHAR, model VARCHAR, dataset VARCHAR, task VARCHAR,
    prompt_mode VARCHAR, weights_fingerprint VARCHAR, weights_origin VARCHAR, prompt_hash VARCHAR,
    manifest_hash VARCHAR, embedding_key VARCHAR, n_items INTEGER, n_failed INTEGER,
    device VARCHAR, precision VARCHAR, created_at TIMESTAMPTZ);
ALTER TABLE cells ADD COLUMN IF NOT EXISTS variant VARCHAR DEFAULT '';
ALTER TABLE cells ADD COLUMN IF NOT EXISTS task_options JSON;
ALTER TABLE cells ADD COLUMN IF NOT EXISTS options_hash VARCHAR;
ALTER TABLE cells ADD COLUMN IF NOT EXISTS protocol JSON;
ALTER TABLE cells ADD COLUMN IF NOT EXISTS protocol_hash VARCHAR;
ALTER TABLE cells ADD COLUMN IF NOT EXISTS default_protocol BOOLEAN;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS catalog JSON;
CREATE TABLE IF NOT EXISTS results (
    cell_id VARCHAR, metric VARCHAR, value DOUBLE, ci_low DOUBLE, ci_high DOUBLE, n INTEGER);
ALTER TABLE results ADD COLUMN IF NOT EXISTS q1 DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS q3 DOUBLE;
CREATE TABLE IF NOT EXISTS artifacts (cell_id VARCHAR, item VARCHAR, kind VARCHAR, path VARCHAR);
CREATE TABLE IF NOT EXISTS predictions (
    cell_id VARCHAR, y_true INTEGER[], y_pred INTEGER[], n_classes INTEGER, ordinal BOOLEAN);
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS items VARCHAR[];
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS groups VARCHAR[];
CREATE TABLE IF NOT EXISTS comparisons (
    cell_a VARCHAR, cell_b VARCHAR, model_a VARCHAR, model_b VARCHAR, dataset VARCHAR, task VARCHAR,
    variant VARCHAR, prompt_mode VARCHAR, metric VARCHAR, diff DOUBLE, ci_low DOUBLE, ci_high DOUBLE,
    n INTEGER, significant BOOLEAN);
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS p_value DOUBLE;
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS p_holm DOUBLE;
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS n_groups INTEGER;
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS protocol_hash VARCHAR;
CREATE TABLE IF NOT EXISTS costs (
    run_id VARCHAR, model VARCHAR, dataset VARCHAR, device VARCHAR, precision VARCHAR, batch_size INTEGER,
    params BIGINT, images INTEGER, tiles INTEGER, embed_seconds DOUBLE, images_per_s DOUBLE, tiles_per_s DOUBLE,
    wall_seconds DOUBLE, peak_memory_bytes BIGINT, memory_kind VARCHAR, created_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS prompt_rankings (
    dataset VARCHAR, protocol_hash VARCHAR, metric VARCHAR, family VARCHAR, n_models INTEGER, n_draws INTEGER,
    kendall_tau DOUBLE, model VARCHAR, first_rate DOUBLE, median_rank DOUBLE);
CREATE OR REPLACE VIEW results_all AS
    SELECT c.model, c.dataset, c.task, c.variant, c.prompt_mode, r.metric, r.value, r.ci_low, r.ci_high, r.n,
           r.q1, r.q3,
           c.run_id, c.created_at, c.cell_id, c.weights_fingerprint, c.prompt_hash, c.manifest_hash,
           c.device, c.precision, c.task_options, c.options_hash, c.protocol_hash,
           coalesce(c.default_protocol, TRUE) AS default_protocol
    FROM results r JOIN cells c USING (cell_id);
CREATE OR REPLACE VIEW leaderboard AS
    SELECT * FROM results_all
    QUALIFY row_number() OVER (PARTITION BY model, dataset, task, variant, coalesce(prompt_mode, ''), metric,
                                            coalesce(protocol_hash, '') ORDER BY created_at DESC) = 1;
"""


def _null(value: float | None) -> float | None:
    """NaN (nothing to say) is stored as NULL."""
    return None if value is None or value != value else float(value)


def now() -> datetime:
    return datetime.now(timezone.utc)


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._schema_ready = False  # the idempotent DDL runs once per Store, not on every write

    def _connect(self, read_only: bool = False, attempts: int = 50):
        """Open the file, waiting briefly while another process holds its lock."""
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(attempts):
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or attempt == attempts - 1:
                    raise PathboardError(f"cannot open {self.path}: {str(exc).splitlines()[0]}") from None
                time.sleep(0.1)

    def _write(self, sql_and_params: list[tuple[str, list]]) -> None:
        con = self._connect()
        try:
            con.execute("BEGIN")
            if not self._schema_ready:
                con.execute(SCHEMA)
            for sql, params in sql_and_params:
                con.execute(sql, params)
            con.execute("COMMIT")
            self._schema_ready = True
        finally:
            con.close()

    def start_run(self, **provenance) -> str:
        run_id = now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        row = {"run_id": run_id, "started_at": now(), "status": "running", **provenance}
        row["packages"] = json.dumps(row.get("packages", {}))
        if "catalog" in row:
            row["catalog"] = json.dumps(row["catalog"])
        cols = ", ".join(row)
        self._write([(f"INSERT INTO runs ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))])
        return run_id

    def finish_run(self, run_id: str, status: str, image_forwards: int, skipped_cells: list, skipped_files: dict):
        self._write([("UPDATE runs SET finished_at = ?, status = ?, image_forwards = ?, skipped_cells = ?, "
                      "skipped_files = ? WHERE run_id = ?",
                      [now(), status, image_forwards, json.dumps(skipped_cells), json.dumps(skipped_files), run_id])])

    def add_cell(self, run_id: str, cell: dict, metrics, artifacts=(), predictions=None) -> str:
        """One scored cell, its metrics, the files it produced ((item, kind, path)) and, for
        classification, its per-item predictions ((y_true, y_pred, n_classes, ordinal[, item ids[, item
        groups or None]])), atomically."""
        return self.add_cells(run_id, [(cell, metrics, artifacts, predictions)])[0]

    def add_cells(self, run_id: str, entries: list[tuple]) -> list[str]:
        """Several cells as :meth:`add_cell` takes them, in one transaction (a task's variants)."""
        stmts, ids = [], []
        for cell, metrics, artifacts, predictions in entries:
            cell_id = uuid.uuid4().hex
            ids.append(cell_id)
            row = {"cell_id": cell_id, "run_id": run_id, "created_at": now(), **cell}
            stmts.append((f"INSERT INTO cells ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                          list(row.values())))
            stmts += [("INSERT INTO results (cell_id, metric, value, ci_low, ci_high, n, q1, q3) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       [cell_id, m.name, m.value, m.ci_low, m.ci_high, m.n, _null(m.q1), _null(m.q3)])
                      for m in metrics]
            stmts += [("INSERT INTO artifacts VALUES (?, ?, ?, ?)", [cell_id, *a]) for a in artifacts]
            if predictions is not None:
                y_true, y_pred, n_classes, ordinal, *rest = predictions
                items, groups = (list(rest) + [None, None])[:2]
                stmts.append(("INSERT INTO predictions (cell_id, y_true, y_pred, n_classes, ordinal, items, groups) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?)",
                              [cell_id, [int(v) for v in y_true], [int(v) for v in y_pred], n_classes, ordinal,
                               None if items is None else [str(i) for i in items],
                               None if groups is None else [str(g) for g in groups]]))
        self._write(stmts)
        return ids

    def add_cost(self, run_id: str, cost: dict) -> None:
        """What embedding one dataset with one model cost in this run (see :mod:`pathboard.core.cost`)."""
        row = {"run_id": run_id, "created_at": now(), **cost}
        self._write([(f"INSERT INTO costs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                      list(row.values()))])

    #: the columns of a :meth:`replace_comparisons` row, in order (a shorter row fills the first ones)
    COMPARISON_COLUMNS = ("cell_a", "cell_b", "model_a", "model_b", "dataset", "task", "variant", "prompt_mode",
                          "metric", "diff", "ci_low", "ci_high", "n", "significant", "p_value", "p_holm",
                          "n_groups", "protocol_hash")

    def replace_comparisons(self, rows: list[list]) -> None:
        stmts = [("DELETE FROM comparisons", [])]
        for row in rows:
            cols = ", ".join(self.COMPARISON_COLUMNS[:len(row)])
            stmts.append((f"INSERT INTO comparisons ({cols}) VALUES ({', '.join('?' * len(row))})", list(row)))
        self._write(stmts)

    def replace_prompt_rankings(self, rows: list[list]) -> None:
        """The ranking stability rows of :func:`pathboard.core.rankings.rank_latest`, replacing the old ones."""
        self._write([("DELETE FROM prompt_rankings", [])]
                    + [("INSERT INTO prompt_rankings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(r)) for r in rows])

    def query(self, sql: str, params: list | None = None):
        """A pandas DataFrame from a read-only connection."""
        if not self.path.is_file():
            raise PathboardError(f"no results database at {self.path}; run `pathboard run` first or pass --db")
        con = self._connect(read_only=True)
        try:
            return con.execute(sql, params or []).df()
        finally:
            con.close()
