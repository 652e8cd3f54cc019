"""Results in DuckDB: runs (provenance), cells (one model x dataset x task x prompt mode), results,
and what each model cost to run (``costs``: one row per model and dataset of a run).

**No result is lost to a lock.** DuckDB lets one process write a file, and a process holding it
read-only (the leaderboard, a notebook's ``duckdb.connect(..., read_only=True)``) keeps writers out.
So every write is one short transaction, and a transaction that cannot get the file within
``LOCK_PATIENCE`` seconds is appended, whole, as one line to a per-process journal beside the database
(``<db>.journal/<host>-<pid>.jsonl``, flushed and fsynced) instead of failing. Whoever next gets the file
for writing (this run's next write, :meth:`Store.flush` at the end of the run, which waits up to
``PATHBOARD_LOCK_WAIT`` seconds and says so, or the next pathboard command) first replays every
journalled transaction, in order, in one transaction that also records each replayed id in
``journal_applied``; the journal file goes only after that commit. A kill at any point therefore loses
nothing and replays nothing twice: an unfinished last line (a kill mid-append) was never acknowledged
and is ignored. Readers are never blocked and never see half a cell; they see journalled cells once
merged. The alternative, one immutable file per cell with the database as an index, would make every
reader scan files; the journal keeps DuckDB the single place results live.

**Bursts.** Opening the file and checkpointing it on close cost ~20 ms, several times a cell's own
transaction. Where many scored cells arrive at once (a Ray scoring unit returns a model x dataset's
cells together), :meth:`Store.burst` keeps the file open across their transactions: each cell is still
its own committed transaction (a kill -9 loses none: DuckDB replays its log on the next open), and the
file is closed again when the burst ends, so readers wait only for the burst. Many rows of one table go
in as one statement (:func:`bulk_insert`).

**Shared lists.** A cell's predictions name its items' true labels, ids and groups, which every model's and prompt
mode's cell of one dataset shares. They are stored once each, in ``lists``, keyed by their content, and a
prediction row holds their keys (rows of older databases hold them inline; readers take either). The writer
connection runs without DuckDB's optimizer and worker threads (``WRITER``), which slow its small inserts down.

**Honest run records.** A run stores its host and PID; a run still marked ``running`` whose process is
gone (same host, PID not alive or not a pathboard process) is marked ``interrupted`` by the next
command that writes, as is one on another host whose last write is older than ``STALE_S``.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np

from pathboard.core.errors import PathboardError
from pathboard.core.paths import process_alive

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
ALTER TABLE cells ADD COLUMN IF NOT EXISTS cell_key VARCHAR;
ALTER TABLE cells ADD COLUMN IF NOT EXISTS pack VARCHAR;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS catalog JSON;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS pid INTEGER;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS heartbeat_at TIMESTAMPTZ;
CREATE TABLE IF NOT EXISTS journal_applied (id VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS results (
    cell_id VARCHAR, metric VARCHAR, value DOUBLE, ci_low DOUBLE, ci_high DOUBLE, n INTEGER);
ALTER TABLE results ADD COLUMN IF NOT EXISTS q1 DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS q3 DOUBLE;
ALTER TABLE results ADD COLUMN IF NOT EXISTS units INTEGER;
ALTER TABLE results ADD COLUMN IF NOT EXISTS undefined DOUBLE;
CREATE TABLE IF NOT EXISTS artifacts (cell_id VARCHAR, item VARCHAR, kind VARCHAR, path VARCHAR);
CREATE TABLE IF NOT EXISTS predictions (
    cell_id VARCHAR, y_true INTEGER[], y_pred INTEGER[], n_classes INTEGER, ordinal BOOLEAN);
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS items VARCHAR[];
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS groups VARCHAR[];
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS y_true_key VARCHAR;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS items_key VARCHAR;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS groups_key VARCHAR;
CREATE TABLE IF NOT EXISTS lists (key VARCHAR PRIMARY KEY, labels INTEGER[], names VARCHAR[]);
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
           r.q1, r.q3, r.units, r.undefined,
           c.run_id, c.created_at, c.cell_id, c.weights_fingerprint, c.prompt_hash, c.manifest_hash,
           c.device, c.precision, c.task_options, c.options_hash, c.protocol_hash,
           coalesce(c.default_protocol, TRUE) AS default_protocol, c.n_items,
           c.protocol->'task'->>'headline' AS headline, c.protocol->'task'->>'bootstrap' AS bootstrap, c.pack,
           coalesce(c.protocol->'model'->>'pooling', c.protocol->'task'->>'pooling') AS pooling
    FROM results r JOIN cells c USING (cell_id);
CREATE OR REPLACE VIEW leaderboard AS
    SELECT * FROM results_all
    QUALIFY row_number() OVER (PARTITION BY model, dataset, task, variant, coalesce(prompt_mode, ''), metric,
                                            coalesce(protocol_hash, '') ORDER BY created_at DESC) = 1;
"""


#: the ``results`` table's columns and their types, in the order add_cells writes them
RESULT_TYPES = {"cell_id": "VARCHAR", "metric": "VARCHAR", "value": "DOUBLE", "ci_low": "DOUBLE", "ci_high": "DOUBLE",
                "n": "INTEGER", "q1": "DOUBLE", "q3": "DOUBLE", "units": "INTEGER", "undefined": "DOUBLE"}

#: the type of each column of ``cells`` that is not VARCHAR, for inserting a task's variants as typed lists
CELL_TYPES = {"n_items": "INTEGER", "n_failed": "INTEGER", "created_at": "TIMESTAMPTZ", "task_options": "JSON",
              "protocol": "JSON", "default_protocol": "BOOLEAN"}
COMPARISON_TYPES = {"diff": "DOUBLE", "ci_low": "DOUBLE", "ci_high": "DOUBLE", "n": "INTEGER", "significant": "BOOLEAN",
                    "p_value": "DOUBLE", "p_holm": "DOUBLE", "n_groups": "INTEGER"}
RANKING_COLUMNS = ("dataset", "protocol_hash", "metric", "family", "n_models", "n_draws", "kendall_tau", "model",
                   "first_rate", "median_rank")
RANKING_TYPES = {"n_models": "INTEGER", "n_draws": "INTEGER", "kendall_tau": "DOUBLE", "first_rate": "DOUBLE",
                 "median_rank": "DOUBLE"}
_PYTHON = {"DOUBLE": float, "INTEGER": int, "BOOLEAN": bool}


@dataclass
class Rows:
    """Many rows of one table as typed columns: a statement's parameters that :func:`execute` inserts as one
    Arrow table (about 4x faster than binding the columns as lists), and that the journal holds as lists."""

    kinds: list[str]
    columns: list[list]

    def arrow(self):
        import pyarrow as pa

        types = {"DOUBLE": pa.float64(), "INTEGER": pa.int64(), "BOOLEAN": pa.bool_(),
                 "TIMESTAMPTZ": pa.timestamp("us", tz="UTC")}
        return pa.table({f"c{i}": pa.array(values, type=types.get(kind, pa.string()))
                         for i, (kind, values) in enumerate(zip(self.kinds, self.columns))})


#: the writer's settings. Its statements are mostly small inserts of rows it has in hand, which DuckDB's optimizer and
#: worker threads only slow down: ~0.5 ms of each ~1.5 ms statement of a cell; its largest, 30,000 comparisons
#: through Arrow, took 0.28 s with them against 0.34 s without, in one run of benchmarks/store_writes.py
WRITER = {"threads": 1, "enable_optimizer": False}

#: from this many rows on, a bulk insert goes through Arrow. Below, typed lists: Arrow binds a few-shot cell's 1,200
#: rows in ~16 ms instead of ~23 ms, but its import (pyarrow, and pandas, which DuckDB loads to read Arrow) costs
#: ~0.4 s, more than a run of a few such cells saves (benchmarks/store_writes.py, benchmarks/fewshot_cost.py)
ARROW_ROWS = 4096


def bulk_insert(table: str, columns: Sequence[str], types: dict[str, str],
                rows: Sequence[Sequence]) -> tuple[str, object]:
    """One INSERT statement for any number of rows (a column not in ``types`` is VARCHAR), so its cost hardly
    grows with the rows: one row as plain values (the cheapest to bind), their columns as typed lists unnested
    together below ARROW_ROWS, else as :class:`Rows`."""
    kinds = [types.get(c, "VARCHAR") for c in columns]
    lists = []
    for kind, values in zip(kinds, zip(*rows) if rows else [()] * len(columns)):
        cast = _PYTHON.get(kind)
        lists.append([v if v is None or cast is None else cast(v) for v in values])
    if len(rows) == 1:
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", \
            [values[0] for values in lists]
    into = f"INSERT INTO {table} ({', '.join(columns)}) SELECT "
    if len(rows) < ARROW_ROWS:
        return into + ", ".join(f"unnest(?::{kind}[])" for kind in kinds), lists
    return into + ", ".join(f"c{i}::{kind}" for i, kind in enumerate(kinds)) + " FROM rows", Rows(kinds, lists)


def execute(con, sql: str, params) -> None:
    """``con.execute(sql, params)``; :class:`Rows` parameters are the table ``rows`` that ``sql`` reads."""
    if not isinstance(params, Rows):
        con.execute(sql, params)
        return
    con.register("rows", params.arrow())
    try:
        con.execute(sql)
    finally:
        con.unregister("rows")


def interval_units(m) -> int | None:
    """The units a metric's interval resampled (``Metric.units``); a plugin's Metric that does not say, but has
    an interval, counts its n items; None without an interval."""
    units = getattr(m, "units", 0)
    if units:
        return int(units)
    return int(m.n) if m.ci_low == m.ci_low and m.ci_high == m.ci_high and m.n else None


def _null(value: float | None) -> float | None:
    """NaN (nothing to say) is stored as NULL."""
    return None if value is None or value != value else float(value)


def now() -> datetime:
    return datetime.now(timezone.utc)


#: seconds a write waits for the file before it goes to the journal
LOCK_PATIENCE = 2.0
#: a run on another host whose last write is older than this is taken as interrupted
STALE_S = 24 * 3600


def _encode(value):
    if isinstance(value, datetime):
        return {"$t": value.isoformat()}
    if isinstance(value, Rows):
        return {"$rows": [value.kinds, value.columns]}
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot journal {type(value).__name__}")


def _decode(value):
    if isinstance(value, dict) and set(value) == {"$t"}:
        return datetime.fromisoformat(value["$t"])
    if isinstance(value, dict) and set(value) == {"$rows"}:
        return Rows(value["$rows"][0], _decode(value["$rows"][1]))
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


#: what a file that is not a DuckDB database holds, by its first bytes
_CONTENT = ((b"PAR1", "a Parquet file"), (b"SQLite format 3", "an SQLite database"), (b"PK", "a zip or xlsx file"),
            (b"{", "JSON"), (b"[", "JSON"))


def not_a_database(path: Path) -> PathboardError:
    """One line for a results path that holds something else: what it holds, and what to do."""
    head = b""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        pass
    if not head:
        why = "0 bytes: probably left by a run that failed on a full disk"
    else:
        text = head.lstrip()
        why = next((what for magic, what in _CONTENT if text.startswith(magic)), None) or (
            "text" if all(32 <= b < 127 or b in b"\t\r\n" for b in head) else f"{path.stat().st_size} bytes of "
            "something else")
    return PathboardError(f"{path} is not a DuckDB database ({why}); pathboard keeps results in DuckDB: pass --db "
                          f"NEW.duckdb, or move it away (`pathboard export --format csv` writes CSV)")


def check_database(path: str | Path, must_exist: bool = False) -> Path:
    """``path`` checked as a results database by its content, before any work: a DuckDB file, or (unless
    ``must_exist``) nothing yet. A JSON, CSV or Parquet file, an empty file or a folder is one line."""
    path = Path(path)
    if path.is_dir():
        raise PathboardError(f"--db {path} is a folder; pass a file, e.g. --db {path / 'pathboard.duckdb'}")
    if not path.exists():
        if must_exist:
            raise PathboardError(f"no results database at {path}; run `pathboard run` first or pass --db")
        return path
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError as exc:
        raise PathboardError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head[8:12] != b"DUCK":  # DuckDB's file header: 8 bytes of checksum, then the magic bytes
        raise not_a_database(path)
    return path


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        #: the read-write connection a :meth:`burst` keeps open across its transactions, and whether one is on
        self._held, self._bursting = None, False
        self._beat = -1e9  # when add_cells last moved the run's heartbeat
        self.journal = Path(str(self.path) + ".journal")
        #: the idempotent DDL and the marking of interrupted runs happen on a Store's first write, not on every one
        self._schema_ready = False
        #: cells committed to the database, and cells written to the journal and not yet merged by this Store
        self.committed, self.journalled = 0, 0
        self.waited_s = 0.0
        self._mine: dict[str, int] = {}  # this Store's journalled transactions not merged yet: id -> cells
        self._lists: set[str] = set()  # keys of the shared lists this Store committed or journalled
        self._file: tuple | None = None  # the file they went to, as this Store's last write (any) left it

    def _connect(self, read_only: bool = False, patience: float = 5.0):
        """Open the file, waiting up to ``patience`` seconds while another process holds its lock."""
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PathboardError(f"cannot create the folder of the results database {self.path}: "
                                     f"{exc.strerror or exc}; pass --db in a writable folder") from None
        check_database(self.path)  # DuckDB would open a JSON or CSV file as an in-memory view of it
        deadline = time.monotonic() + patience
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config={} if read_only else WRITER)
            except duckdb.ConnectionException as exc:  # this process has the file open already, otherwise set
                if not read_only and "different configuration" in str(exc):
                    try:  # a notebook's own read-write connection: share it, as it is set
                        return duckdb.connect(str(self.path))
                    except duckdb.ConnectionException:
                        pass
                raise PathboardError(f"cannot open {self.path}: {str(exc).splitlines()[0]}; this process has it "
                                     "open already (read-only?): close that connection first") from None
            except duckdb.IOException as exc:
                text = str(exc)
                if "not a valid DuckDB database" in text:
                    raise not_a_database(self.path) from None
                if "lock" not in text.lower() or time.monotonic() >= deadline:
                    raise PathboardError(f"cannot open {self.path}: {text.splitlines()[0]}") from None
                time.sleep(0.1)

    def _locked(self, exc: PathboardError) -> bool:
        return "lock" in str(exc).lower()

    def _journal_file(self) -> Path:
        return self.journal / f"{socket.gethostname()}-{os.getpid()}.jsonl"

    def _append_journal(self, sql_and_params: list[tuple[str, list]], cells: int = 0) -> None:
        self.journal.mkdir(parents=True, exist_ok=True)
        entry = uuid.uuid4().hex
        self._mine[entry] = cells
        line = json.dumps({"id": entry, "stmts": [[sql, params if isinstance(params, Rows) else list(params)]
                                           for sql, params in sql_and_params]},
                          default=_encode) + "\n"
        fd = os.open(self._journal_file(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        size = os.fstat(fd).st_size  # the file is this process's own: nobody else appends to it
        try:
            data = memoryview(line.encode())
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        except OSError:  # a full disk: no half line for the next append to join (and so lose both)
            os.ftruncate(fd, size)
            raise
        finally:
            os.close(fd)

    def pending(self) -> list[Path]:
        """Journal files waiting to be merged (this and other processes')."""
        return sorted(self.journal.glob("*.jsonl")) if self.journal.is_dir() else []

    def _claim(self) -> list[Path]:
        """Move every journal file aside under a new name (still ``*.jsonl``) before reading it: a process
        that appends meanwhile opens its own name afresh, so nothing it writes can be removed unread."""
        claimed = []
        for file in self.pending():
            target = file.with_name(f"{file.stem.split('.', 1)[0]}.{uuid.uuid4().hex[:8]}.jsonl")
            try:
                file.rename(target)
            except OSError:
                continue
            claimed.append(target)
        return claimed

    def _merge(self, con, files: list[Path]) -> tuple[list[str], dict[Path, int]]:
        """Replay every journalled transaction of ``files`` not applied yet, inside ``con``'s open
        transaction; (ids replayed, bytes read per file). The caller removes a file after the commit only
        if it still has exactly the bytes read (an append that raced the claim keeps it for next time)."""
        if not files:
            return [], {}
        applied = {r[0] for r in con.execute("SELECT id FROM journal_applied").fetchall()}
        replayed, sizes = [], {}
        for file in files:
            data = file.read_bytes()
            sizes[file] = len(data)
            for raw in data.decode("utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue  # an unfinished last line: a kill mid-append, never acknowledged
                if entry["id"] in applied:
                    continue
                for sql, params in entry["stmts"]:
                    execute(con, sql, _decode(params))
                con.execute("INSERT INTO journal_applied VALUES (?, ?)", [entry["id"], now()])
                applied.add(entry["id"])
                replayed.append(entry["id"])
        return replayed, sizes

    def _write(self, sql_and_params: list[tuple[str, list]], patience: float | None = None, cells: int = 0) -> bool:
        """One transaction: committed (True), or journalled while another process holds the file (False;
        nothing to journal when ``sql_and_params`` is empty: a merge attempt). ``cells``: how many cells it
        stores (counted as committed or journalled)."""
        if patience is None:  # while our own transactions wait in the journal, the file was held a moment ago
            patience = 0.2 if self._mine else LOCK_PATIENCE
        con, self._held = self._held, None
        if con is None:
            try:
                con = self._connect(patience=patience)
            except PathboardError as exc:
                if not self._locked(exc):
                    raise
                if sql_and_params:
                    self._append_journal(sql_and_params, cells)
                return False
        files = self._claim()
        first = not self._schema_ready  # once per Store: the schema, and runs whose process is gone
        try:
            con.execute("BEGIN")
            if first:
                con.execute(SCHEMA)
            merged, sizes = self._merge(con, files)
            for sql, params in sql_and_params:
                execute(con, sql, params)
            if first:
                self._mark_interrupted(con)
            con.execute("COMMIT")
            self._schema_ready = True
        except BaseException:
            con.close()  # an open transaction is rolled back
            raise
        if self._bursting:
            self._held = con
        else:
            con.close()
        self._file = self._identity()  # the file this Store's lists went to, as this write left it
        for file, size in sizes.items():
            try:
                if file.stat().st_size == size:
                    file.unlink()
            except OSError:
                pass
        for entry in (e for e in merged if e in self._mine):
            cells = self._mine.pop(entry)
            self.committed += cells
            self.journalled -= cells
        return True

    @contextmanager
    def burst(self):
        """Writes made inside share one open connection, each still its own transaction; the file is closed
        (checkpointed) when the block ends. For many cells stored back to back, never around slow work."""
        self._bursting = True
        try:
            yield self
        finally:
            self._bursting = False
            con, self._held = self._held, None
            if con is not None:
                con.close()
                self._file = self._identity()  # the close checkpointed it

    def _mark_interrupted(self, con) -> None:
        host = socket.gethostname()
        rows = con.execute("SELECT run_id, host, pid, coalesce(heartbeat_at, started_at) FROM runs "
                           "WHERE status = 'running'").fetchall()
        for run_id, run_host, pid, beat in rows:
            gone = (pid is not None and run_host == host and not process_alive(pid)) or (
                run_host != host and beat is not None and (now() - beat).total_seconds() > STALE_S)
            if gone:
                con.execute("UPDATE runs SET status = 'interrupted', finished_at = coalesce(heartbeat_at, started_at) "
                            "WHERE run_id = ?", [run_id])

    def settle(self, patience: float = 10.0) -> bool:
        """Bring the file up to date: the current schema, the journal merged, runs whose process is gone
        marked interrupted. False when another process held the file throughout."""
        return self._write([], patience=patience)

    def flush(self, wait_s: float | None = None) -> bool:
        """Merge the journal, waiting up to ``wait_s`` seconds (env PATHBOARD_LOCK_WAIT, default 120) for a
        reader to release the file, and saying once that it waits. True when nothing is left pending."""
        if not self.pending():
            return True
        wait_s = float(os.environ.get("PATHBOARD_LOCK_WAIT", 120)) if wait_s is None else wait_s
        start = time.monotonic()
        print(f"note: {self.path} is held by another process (a reader?); waiting up to {wait_s:.0f} s to merge "
              f"{self.journalled or 'the'} journalled cell(s)", file=sys.stderr)
        while True:
            self._write([], patience=min(5.0, max(0.1, wait_s - (time.monotonic() - start))))
            if not self.pending():
                self.waited_s = time.monotonic() - start
                print(f"note: merged the journalled cell(s) after waiting {self.waited_s:.1f} s", file=sys.stderr)
                return True
            if time.monotonic() - start >= wait_s:
                print(f"warning: {self.path} is still held; {self.journalled} cell(s) wait in {self.journal} and are "
                      "merged by the next pathboard command that writes to it (e.g. `pathboard runs`)",
                      file=sys.stderr)
                return False

    def start_run(self, **provenance) -> str:
        run_id = now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        row = {"run_id": run_id, "started_at": now(), "status": "running", "pid": os.getpid(),
               "heartbeat_at": now(), **provenance}
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
        stmts, ids, results, rows, lists = [], [], [], {}, set()
        if self._identity() != self._file:  # another file (replaced, restored), or written by another process
            self._lists.clear()  # since: its lists are inserted again (a no-op where they are there)
        for cell, metrics, artifacts, predictions in entries:
            cell_id = uuid.uuid4().hex
            ids.append(cell_id)
            row = {"cell_id": cell_id, "run_id": run_id, "created_at": now(), **cell}
            rows.setdefault(tuple(row), []).append(list(row.values()))
            results += [(cell_id, m.name, m.value, m.ci_low, m.ci_high, m.n, _null(m.q1), _null(m.q3),
                         interval_units(m), _null(getattr(m, "undefined", 0.0))) for m in metrics]
            stmts += [("INSERT INTO artifacts VALUES (?, ?, ?, ?)", [cell_id, *a]) for a in artifacts]
            if predictions is not None:
                y_true, y_pred, n_classes, ordinal, *rest = predictions
                items, groups = (list(rest) + [None, None])[:2]
                stmts.append(("INSERT INTO predictions (cell_id, y_pred, n_classes, ordinal, y_true_key, items_key, "
                              "groups_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                              [cell_id, np.asarray(y_pred, dtype=np.int64).tolist(), n_classes, ordinal,
                               self._shared("labels", np.asarray(y_true, dtype=np.int64).tolist(), stmts, lists),
                               self._shared("names", items, stmts, lists),
                               self._shared("names", groups, stmts, lists)]))
        for columns, values in rows.items():  # a task's variants share their columns: one statement for them all
            stmts.insert(0, bulk_insert("cells", columns, CELL_TYPES, values))
        if results:  # every metric row of every variant in one statement
            stmts.append(bulk_insert("results", list(RESULT_TYPES), RESULT_TYPES, results))
        if time.monotonic() - self._beat >= 1.0:  # once a second is plenty for STALE_S
            self._beat = time.monotonic()
            stmts.append(("UPDATE runs SET heartbeat_at = ? WHERE run_id = ?", [now(), run_id]))
        cells = len({(c.get("model"), c.get("dataset"), c.get("task"), c.get("prompt_mode")) for c, *_ in entries})
        if self._write(stmts, cells=cells):  # a cell is stored with all its variants' rows
            self.committed += cells
        else:
            self.journalled += cells
        self._lists |= lists  # committed, or journalled ahead of anything this process writes next
        return ids

    def _identity(self) -> tuple | None:
        """The database file's device, inode and change time (None while there is none)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino, st.st_ctime_ns

    def _shared(self, kind: str, values, stmts: list, adding: set) -> str | None:
        """The key in ``lists`` of ``values``: ``kind`` "labels" (a prediction's true labels) or "names" (its item
        ids or groups, as strings). Appends the list's insert to ``stmts`` unless this Store stored it already, or
        is ``adding`` it in this transaction; another process inserts it once more, as a no-op. Every model's and
        prompt mode's cell of one dataset holds the same truth, items and groups: stored with each cell, they were
        most of what committing a zero-shot cell wrote (benchmarks/store_writes.py)."""
        if values is None:
            return None
        if kind == "names":
            values = [str(v) for v in values]
            blob = "\0".join(values).encode()  # no name holds NUL
        else:
            blob = np.asarray(values, dtype=np.int64).tobytes()
        key = hashlib.sha256(f"{kind}\0{len(values)}\0".encode() + blob).hexdigest()[:32]
        if key not in self._lists and key not in adding:
            stmts.append((f"INSERT INTO lists (key, {kind}) VALUES (?, ?) ON CONFLICT DO NOTHING", [key, values]))
            adding.add(key)
        return key

    def add_cost(self, run_id: str, cost: dict) -> None:
        """What embedding one dataset with one model cost in this run (see :mod:`pathboard.core.engine.cost`)."""
        row = {"run_id": run_id, "created_at": now(), **cost}
        self._write([(f"INSERT INTO costs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                      list(row.values()))])

    #: the columns of a :meth:`replace_comparisons` row, in order (a shorter row fills the first ones)
    COMPARISON_COLUMNS = ("cell_a", "cell_b", "model_a", "model_b", "dataset", "task", "variant", "prompt_mode",
                          "metric", "diff", "ci_low", "ci_high", "n", "significant", "p_value", "p_holm",
                          "n_groups", "protocol_hash")

    def replace_comparisons(self, rows: list[list]) -> None:
        stmts = [("DELETE FROM comparisons", [])]
        by_width: dict[int, list] = {}  # a shorter row fills the first columns
        for row in rows:
            by_width.setdefault(len(row), []).append(row)
        stmts += [bulk_insert("comparisons", self.COMPARISON_COLUMNS[:width], COMPARISON_TYPES, same)
                  for width, same in by_width.items()]
        self._write(stmts)

    def replace_prompt_rankings(self, rows: list[list]) -> None:
        """The ranking stability rows of :func:`pathboard.core.science.rankings.rank_draws`, replacing the old ones."""
        self._write([("DELETE FROM prompt_rankings", [])]
                    + ([bulk_insert("prompt_rankings", RANKING_COLUMNS, RANKING_TYPES, rows)] if rows else []))

    def run_rows(self, limit: int | None = None):
        """Every run, newest first: status, duration in seconds (to its last heartbeat while it runs or
        after it died), cells stored (model x dataset x task x prompt mode, each with all its variants), skip
        reasons, image batches, host, pid and command."""
        return self.query("""
            SELECT r.run_id, r.started_at, r.status,
                   epoch(coalesce(r.finished_at, r.heartbeat_at) - r.started_at) AS seconds,
                   (SELECT count(DISTINCT (c.model, c.dataset, c.task, coalesce(c.prompt_mode, '')))
                    FROM cells c WHERE c.run_id = r.run_id) AS cells,
                   coalesce(json_array_length(r.skipped_cells), 0) AS skipped,
                   r.image_forwards, r.device, r.precision, r.host, r.pid, r.command
            FROM runs r ORDER BY r.started_at DESC""" + (" LIMIT ?" if limit else ""), [limit] if limit else [])

    def query(self, sql: str, params: list | None = None):
        """A pandas DataFrame from a read-only connection."""
        return self._read(sql, params, lambda result: result.df())

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        """The rows, as tuples, from a read-only connection (no pandas)."""
        return self._read(sql, params, lambda result: result.fetchall())

    def _read(self, sql: str, params: list | None, fetch):
        if not self.path.is_file():
            raise PathboardError(f"no results database at {self.path}; run `pathboard run` first or pass --db")
        con = self._connect(read_only=True)
        try:
            return fetch(con.execute(sql, params or []))
        finally:
            con.close()
