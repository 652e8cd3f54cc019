"""The reads of the results database: a missing or foreign file is one line, an empty one no rows."""
from __future__ import annotations

import pytest

from pathboard.core.errors import PathboardError
from pathboard.core.store import queries
from pathboard.core.store.database import Store


def test_load_measured_errors_and_empty(tmp_path):
    with pytest.raises(PathboardError):
        queries.load_measured(tmp_path / "missing.duckdb")
    store = Store(tmp_path / "empty.duckdb")
    store.start_run(command="test", device="cpu", precision="fp32")
    assert queries.load_measured(store.path).empty


def test_the_default_protocol_shows_each_cells_newest_default_result_only(tmp_path):
    """A task whose protocol record changed leaves an older default cell under another hash: the default
    view shows the newest one only (two would be drawn as stacked bars), another protocol keeps its own."""
    from pathboard.core.science.metrics import Metric

    store = Store(tmp_path / "pb.duckdb")
    run_id = store.start_run(command="test", device="cpu", precision="fp32")
    common = {"model": "plip", "dataset": "lung", "task": "fewshot", "prompt_mode": None, "n_items": 96,
              "n_failed": 0, "device": "cpu", "precision": "fp32"}
    for value, protocol_hash, default in ((0.60, "old", True), (0.70, "new", True), (0.90, "custom", False)):
        store.add_cells(run_id, [({**common, "variant": v, "protocol_hash": protocol_hash,
                                   "default_protocol": default}, [Metric("balanced_accuracy", value + i, value,
                                                                          value, 48)], (), None)
                                 for i, v in enumerate(["", "prototype/k=1/median"])])
    measured = queries.load_measured(store.path)
    assert list(measured["value"]) == [0.70] and list(measured["protocol_hash"]) == ["new"]
    variants = queries.load_variants(store.path, "fewshot")
    assert sorted(variants["value"]) == [0.70, 1.70]  # the newest default cell's variants, not the older one's
    assert queries.count_variants(store.path, "fewshot", "default") == 2
    assert list(queries.load_measured(store.path, "custom")["value"]) == [0.90]
    assert len(queries.load_measured(store.path, "all")) == 3


def test_a_run_s_own_reads_need_no_pandas_and_say_when_there_is_nothing_to_compare(tmp_path):
    """What the run reads (cells up to date, comparisons current, anything to compare) comes as plain rows:
    a run of one model never imports pandas (~0.3 s); with a second model's predictions there are pairs."""
    import subprocess
    import sys

    from pathboard.core.science.metrics import Metric

    store = Store(tmp_path / "pb.duckdb")
    run = store.start_run(command="test", device="cpu", precision="fp32")
    cell = {"model": "plip", "dataset": "lung", "task": "zeroshot", "variant": "", "prompt_mode": "ensemble",
            "n_items": 2, "n_failed": 0, "device": "cpu", "precision": "fp32", "cell_key": "k1"}
    store.add_cell(run, cell, [Metric("weighted_f1", 0.5, 0.4, 0.6, 2)], predictions=([0, 1], [1, 1], 2, False, ["a", "b"]))
    code = ("import sys; from pathboard.core.store import Store, queries; s = Store(sys.argv[1]); "
            "print(len(queries.current_cell_keys(s)), queries.comparisons_current(s), "
            "queries.anything_to_compare(s, 'zeroshot', 'weighted_f1'), 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(store.path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False", "(False,", "False,", "False,", "False)", "False"], out.stdout + out.stderr
    store.add_cell(run, {**cell, "model": "conch", "cell_key": "k2"}, [Metric("weighted_f1", 0.6, 0.5, 0.7, 2)],
                   predictions=([0, 1], [0, 1], 2, False, ["a", "b"]))
    assert queries.anything_to_compare(store, "zeroshot", "weighted_f1") == (True, False, False, False)
