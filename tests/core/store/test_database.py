"""The results database: readers between writes, and a journal append that races a merge kept for the
next one."""
from __future__ import annotations

import subprocess
import sys

import duckdb

from pathboard.core.science.metrics import Metric
from pathboard.core.store.database import Store

READER = "import duckdb, sys; print(duckdb.connect(sys.argv[1], read_only=True).execute(sys.argv[2]).fetchone()[0])"


def read_elsewhere(db, sql):
    """Another process opening the file read-only, as the leaderboard does."""
    out = subprocess.run([sys.executable, "-c", READER, str(db), sql], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_other_processes_can_read_between_writes(tmp_path):
    db = tmp_path / "pb.duckdb"
    store = Store(db)
    run = store.start_run(command="test", device="cpu", precision="fp32")
    assert read_elsewhere(db, "SELECT status FROM runs") == "running"
    cell = {"model": "m", "dataset": "d", "task": "zeroshot", "prompt_mode": "single"}
    store.add_cell(run, cell, [Metric("weighted_f1", 0.5, 0.4, 0.6, 10)])
    assert read_elsewhere(db, "SELECT value FROM leaderboard") == "0.5"
    store.add_cell(run, cell, [Metric("weighted_f1", 0.7, 0.6, 0.8, 10)])
    # the view shows the latest result per cell; results_all keeps history
    assert read_elsewhere(db, "SELECT value FROM leaderboard") == "0.7"
    assert read_elsewhere(db, "SELECT count(*) FROM results_all") == "2"
    store.finish_run(run, "finished", 0, [], {})
    assert read_elsewhere(db, "SELECT status FROM runs") == "finished"


def q(db, sql, params=()):
    return duckdb.connect(str(db), read_only=True).execute(sql, list(params)).fetchall()


def test_an_append_that_races_a_merge_is_kept_for_the_next_one(tmp_path, monkeypatch):
    import json as _json

    from pathboard.core.store.database import Store

    store = Store(tmp_path / "pb.duckdb")
    store.settle()
    store._append_journal([("INSERT INTO runs (run_id) VALUES (?)", ["r1"])])
    merge = Store._merge

    def racing(self, con, files):  # the journal's owner appends right after the merger read the file
        out = merge(self, con, files)
        with open(files[0], "a") as f:
            f.write(_json.dumps({"id": "late", "stmts": [["INSERT INTO runs (run_id) VALUES (?)", ["r2"]]]}) + "\n")
        return out

    monkeypatch.setattr(Store, "_merge", racing)
    store.settle()
    monkeypatch.setattr(Store, "_merge", merge)
    assert store.pending()  # the grown file was not removed
    store.settle()
    assert not store.pending()
    assert sorted(q(tmp_path / "pb.duckdb", "SELECT run_id FROM runs")) == [("r1",), ("r2",)]
