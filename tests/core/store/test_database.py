"""The results database: readers between writes, and a journal append that races a merge kept for the
next one."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import duckdb
import numpy as np
import pytest

from pathboard.core.errors import PathboardError
from pathboard.core.science.metrics import Metric
from pathboard.core.store import database
from pathboard.core.store.database import Store, check_database

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


def hold_for_reading(db, seconds: float = 3):
    """Another process holding the file read-only for ``seconds`` (a leaderboard): once this returns."""
    reader = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}, "
                               f"read_only=True); print('held', flush=True); time.sleep({seconds})"],
                              stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "held"
    return reader


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


def test_a_results_path_is_checked_by_its_content(tmp_path):
    db = tmp_path / "real.json"  # a DuckDB database, whatever its name
    Store(db).start_run(command="test")
    assert check_database(db) == db
    assert check_database(tmp_path / "new.duckdb") == tmp_path / "new.duckdb"  # nothing yet: run creates it
    with pytest.raises(PathboardError, match="no results database"):
        check_database(tmp_path / "new.duckdb", must_exist=True)
    for name, content, said in [("a.json", b'[{"model": "plip"}]', "JSON"), ("a.csv", b"a,b\n1,2\n", "text"),
                                ("a.parquet", b"PAR1\x15\x04", "a Parquet file"), ("a.db", b"SQLite format 3\0",
                                                                                   "an SQLite database"),
                                ("a.bin", bytes(range(256)), "256 bytes of something else"), ("a.duckdb", b"", "0 bytes")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(PathboardError, match=f"is not a DuckDB database \\({said}"):
            check_database(tmp_path / name)
        with pytest.raises(PathboardError, match="is not a DuckDB database"):
            Store(tmp_path / name).query("SELECT 1")  # every open goes through the check
    with pytest.raises(PathboardError, match="is a folder"):
        check_database(tmp_path)


def test_each_result_row_keeps_what_its_interval_rests_on(tmp_path):
    from pathboard.core.engine.steps import intervals_of

    store = Store(tmp_path / "pb.duckdb")
    run_id = store.start_run(command="test", device="cpu", precision="fp32")
    metrics = [Metric("balanced_accuracy", 0.5, 0.0, 1.0, 8, units=2),  # 8 slides of 2 patients
               Metric("recall/c", 0.5, 0.0, 1.0, 8, units=2, undefined=0.25),
               Metric("plugin_metric", 0.7, 0.6, 0.8, 40),  # a plugin's Metric that does not say: its n items
               Metric("n_train", 3.0, float("nan"), float("nan"), 8)]  # no interval: no units
    store.add_cell(run_id, {"model": "m", "dataset": "d", "task": "t", "prompt_mode": None, "variant": ""}, metrics)
    with duckdb.connect(str(store.path), read_only=True) as con:
        rows = dict(con.execute("SELECT metric, (units, undefined) FROM results_all").fetchall())
    assert rows == {"balanced_accuracy": (2, 0.0), "recall/c": (2, 0.25), "plugin_metric": (40, 0.0),
                    "n_train": (None, 0.0)}
    assert intervals_of(metrics) == {"units": 2, "too_few": True, "undefined": {"recall/c": 0.25}}
    assert intervals_of([Metric("x", 1.0, float("nan"), float("nan"), 3)]) == {}


def test_a_burst_writes_a_transaction_per_cell_and_lets_go_of_the_file(tmp_path):
    db = tmp_path / "pb.duckdb"
    store = Store(db)
    run = store.start_run(command="test", device="cpu", precision="fp32")
    cell = {"model": "m", "dataset": "d", "task": "fewshot", "prompt_mode": None}
    n = database.ARROW_ROWS  # as many rows of cells and of results: the Arrow path
    variants = [({**cell, "variant": f"k={k}"}, [Metric("weighted_f1", k / 100, 0.0, 1.0, 10)], (), None)
                for k in range(n)]
    with store.burst():
        store.add_cells(run, variants)
        store.add_cell(run, {**cell, "task": "zeroshot", "prompt_mode": "single"},
                       [Metric("weighted_f1", 0.5, 0.4, 0.6, 10)], predictions=([0, 1], [1, 1], 2, False, ["a", "b"]))
        assert store._held is not None  # one connection for the whole burst
    assert store._held is None and store.committed == 2
    assert read_elsewhere(db, "SELECT count(*) FROM cells") == str(n + 1)  # the file is free again
    assert float(read_elsewhere(db, "SELECT sum(value) FROM results WHERE metric = 'weighted_f1'")) == pytest.approx(
        sum(k / 100 for k in range(n)) + 0.5)
    assert read_elsewhere(db, "SELECT y_pred FROM predictions") == "[1, 1]"


def test_bulk_rows_journalled_behind_a_reader_are_replayed_exactly(tmp_path):
    db = tmp_path / "pb.duckdb"
    store = Store(db)
    run = store.start_run(command="test", device="cpu", precision="fp32")
    reader = hold_for_reading(db)
    variants = [({"model": "m", "dataset": "d", "task": "fewshot", "variant": f"k={k}"},
                 [Metric("balanced_accuracy", k / 200, 0.0, 1.0, 10)], (), None) for k in range(80)]
    store.add_cells(run, variants)
    assert store.journalled == 1 and store.committed == 0  # the reader holds the file: journalled, whole
    reader.wait()
    assert store.flush(wait_s=10)
    assert store.committed == 1 and not store.pending()
    assert q(db, "SELECT count(*), sum(value) FROM results") == [(80, sum(k / 200 for k in range(80)))]


def test_each_item_list_is_stored_once_and_read_back_with_every_cell_that_names_it(tmp_path):
    from pathboard.core.store import queries

    db = tmp_path / "pb.duckdb"
    store = Store(db)
    run = store.start_run(command="test", device="cpu", precision="fp32")
    items, groups = ["a.png", "b.png", "c.png"], ["p1", "p1", "p2"]
    for model in ("m1", "m2"):  # every model's cell of one dataset names the same items and groups
        store.add_cell(run, {"model": model, "dataset": "d", "task": "zeroshot", "prompt_mode": "single"},
                       [Metric("accuracy", 0.5, 0.4, 0.6, 3)], predictions=([0, 1, 1], [0, 1, 0], 2, False, items, groups))
    store.add_cell(run, {"model": "m1", "dataset": "e", "task": "zeroshot", "prompt_mode": "single"},
                   [Metric("accuracy", 0.5, 0.4, 0.6, 2)], predictions=([0, 1], [0, 1], 2, False, ["x", "y"]))
    # d's truth, items and groups, and e's truth and items
    assert q(db, "SELECT count(labels), count(names) FROM lists") == [(2, 3)]
    assert q(db, "SELECT count(*) FROM predictions WHERE y_true IS NULL AND items IS NULL AND groups IS NULL AND "
                 "y_true_key IS NOT NULL AND items_key IS NOT NULL") == [(3,)]
    # another process (a later run) storing a list that is there already: nothing twice, nothing lost
    store2 = Store(db)
    store2.add_cell(run, {"model": "m3", "dataset": "d", "task": "zeroshot", "prompt_mode": "single"},
                    [Metric("accuracy", 0.5, 0.4, 0.6, 3)], predictions=([0, 1, 1], [1, 1, 0], 2, False, items, groups))
    assert q(db, "SELECT count(*) FROM lists") == [(5,)]
    # a row of a database written before the lists had their table keeps its items inline
    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO predictions (cell_id, y_true, y_pred, n_classes, ordinal, items, groups) "
                    "SELECT cell_id, [1, 0], y_pred, n_classes, ordinal, ['old', 'older'], NULL FROM predictions p "
                    "JOIN cells USING (cell_id) WHERE model = 'm1' AND dataset = 'e'")
        con.execute("DELETE FROM predictions WHERE items_key IS NOT NULL AND cell_id IN "
                    "(SELECT cell_id FROM cells WHERE model = 'm1' AND dataset = 'e')")
    read = {(r.model, r.dataset): (list(r.y_true), list(r.items), list(r.groups) if len(np.shape(r.groups)) else None)
            for r in queries.latest_predictions(store).itertuples()}  # a NULL list reads as NA
    assert read == {("m1", "d"): ([0, 1, 1], items, groups), ("m2", "d"): ([0, 1, 1], items, groups),
                    ("m3", "d"): ([0, 1, 1], items, groups), ("m1", "e"): ([1, 0], ["old", "older"], None)}


def test_an_item_list_journalled_behind_a_reader_arrives_before_the_cells_that_name_it(tmp_path):
    from pathboard.core.store import queries

    db = tmp_path / "pb.duckdb"
    store = Store(db)
    run = store.start_run(command="test", device="cpu", precision="fp32")
    reader = hold_for_reading(db)
    cell = {"dataset": "d", "task": "zeroshot", "prompt_mode": "single"}
    store.add_cell(run, {**cell, "model": "m1"}, [Metric("accuracy", 1.0, 1.0, 1.0, 2)],
                   predictions=([0, 1], [0, 1], 2, False, ["a", "b"]))
    assert store.journalled == 1
    reader.wait()
    store.add_cell(run, {**cell, "model": "m2"}, [Metric("accuracy", 0.5, 0.0, 1.0, 2)],  # names the journalled list
                   predictions=([0, 1], [1, 1], 2, False, ["a", "b"]))
    assert store.committed == 2 and not store.pending()
    assert q(db, "SELECT count(*) FROM lists") == [(2,)]  # the truth and the items
    assert [list(i) for i in queries.latest_predictions(store)["items"]] == [["a", "b"], ["a", "b"]]


def test_a_writer_shares_the_file_with_this_process_s_own_connection(tmp_path):
    db = tmp_path / "pb.duckdb"
    store = Store(db)
    run = store.start_run(command="test", device="cpu", precision="fp32")
    cell = {"model": "m", "dataset": "d", "task": "zeroshot", "prompt_mode": "single"}
    with duckdb.connect(str(db)) as mine:  # a notebook's connection, opened with DuckDB's own settings
        store.add_cell(run, cell, [Metric("accuracy", 0.5, 0.4, 0.6, 10)])
        assert mine.execute("SELECT value FROM results").fetchall() == [(0.5,)]
    with duckdb.connect(str(db), read_only=True):  # a read-only one: a writer cannot share it, and says so
        with pytest.raises(PathboardError, match="this process has it open already"):
            store.add_cell(run, cell, [Metric("accuracy", 0.7, 0.6, 0.8, 10)])
    with store.burst():  # the writer's own connection runs without the optimizer and worker threads
        store.add_cell(run, cell, [Metric("accuracy", 0.9, 0.8, 1.0, 10)])
        assert store._held.execute("SELECT current_setting('threads'), current_setting('enable_optimizer')"
                                   ).fetchall() == [(1, False)]


def test_predictions_read_from_a_database_of_the_version_before_lists_and_never_with_a_lost_list(tmp_path):
    from pathboard.core.store import queries

    db = tmp_path / "pb.duckdb"
    store = Store(db)
    run = store.start_run(command="test", device="cpu", precision="fp32")
    for model in ("m1", "m2"):
        store.add_cell(run, {"model": model, "dataset": "d", "task": "zeroshot", "prompt_mode": "single"},
                       [Metric("accuracy", 0.5, 0.4, 0.6, 2)], predictions=([0, 1], [0, 0], 2, False, ["a", "b"]))
    with duckdb.connect(str(db)) as con:  # m2's truth lost (a file replaced under a running Store): not paired
        con.execute("UPDATE predictions SET y_true_key = 'gone' WHERE cell_id IN "
                    "(SELECT cell_id FROM cells WHERE model = 'm2')")
    assert list(queries.latest_predictions(store)["model"]) == ["m1"]
    with duckdb.connect(str(db)) as con:  # the schema before lists: truth, items and groups inline
        con.execute("UPDATE predictions SET y_true = [1, 0], items = ['x', 'y']")
        con.execute("DROP TABLE lists")
        for column in ("y_true_key", "items_key", "groups_key"):
            con.execute(f"ALTER TABLE predictions DROP COLUMN {column}")
    old = queries.latest_predictions(store).sort_values("model")
    assert [list(v) for v in old["y_true"]] == [[1, 0], [1, 0]] and [list(v) for v in old["items"]] == [["x", "y"]] * 2


def test_a_replaced_database_file_gets_its_lists_again(tmp_path):
    from pathboard.core.store import queries

    db = tmp_path / "pb.duckdb"
    store = Store(db)
    run = store.start_run(command="test", device="cpu", precision="fp32")
    shutil.copy(db, tmp_path / "backup.duckdb")
    cell = {"dataset": "d", "task": "zeroshot", "prompt_mode": "single"}
    store.add_cell(run, {**cell, "model": "m1"}, [Metric("accuracy", 1.0, 1.0, 1.0, 2)],
                   predictions=([0, 1], [0, 1], 2, False, ["a", "b"]))
    os.replace(tmp_path / "backup.duckdb", db)  # restored from a backup under the running Store
    store.add_cell(run, {**cell, "model": "m2"}, [Metric("accuracy", 0.5, 0.0, 1.0, 2)],
                   predictions=([0, 1], [1, 1], 2, False, ["a", "b"]))
    assert q(db, "SELECT count(*) FROM lists") == [(2,)]  # the truth and the items, stored again
    assert [list(v) for v in queries.latest_predictions(store)["items"]] == [["a", "b"]]


def test_a_journal_append_that_fails_leaves_no_half_line(tmp_path, monkeypatch):
    store = Store(tmp_path / "pb.duckdb")
    store._append_journal([("INSERT INTO runs (run_id) VALUES (?)", ["r1"])])
    before = store._journal_file().read_bytes()
    real = database.os.write

    def full_disk(fd, data):  # a few bytes land, then the disk is full
        if len(data) > 10:
            return real(fd, data[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(database.os, "write", full_disk)
    with pytest.raises(OSError):
        store._append_journal([("INSERT INTO runs (run_id) VALUES (?)", ["r2"])])
    monkeypatch.setattr(database.os, "write", real)
    assert store._journal_file().read_bytes() == before
    store._append_journal([("INSERT INTO runs (run_id) VALUES (?)", ["r3"])])
    store.settle()
    assert sorted(r for r, in q(tmp_path / "pb.duckdb", "SELECT run_id FROM runs")) == ["r1", "r3"]


def test_this_store_s_own_other_writes_do_not_make_it_store_a_list_again(tmp_path, monkeypatch):
    inserts = []
    real = database.execute
    monkeypatch.setattr(database, "execute",
                        lambda con, sql, params: (inserts.append(sql), real(con, sql, params))[1])
    store = Store(tmp_path / "pb.duckdb")
    run = store.start_run(command="test", device="cpu", precision="fp32")
    for model in ("m1", "m2", "m3"):  # a run stores each model's cells, then what embedding them cost
        store.add_cell(run, {"model": model, "dataset": "d", "task": "zeroshot", "prompt_mode": "single"},
                       [Metric("accuracy", 0.5, 0.4, 0.6, 2)], predictions=([0, 1], [0, 0], 2, False, ["a", "b"]))
        store.add_cost(run, {"model": model, "dataset": "d", "images": 0})
    assert sum(sql.startswith("INSERT INTO lists") for sql in inserts) == 2  # the truth and the items, once
