"""The leaderboard as a research instrument: the highlighted model, ties with the best, the runs view, the
run filter and the selection carried in the URL (Streamlit's AppTest; Chromium in test_browser.py)."""
from __future__ import annotations

import pandas as pd
from test_leaderboard import APP, app_test, make_db, table_html

from pathboard.core.science.metrics import Metric
from pathboard.core.store.database import Store
from pathboard.leaderboard import tables


def _table(values: dict) -> pd.DataFrame:
    """A comparison_table of {(model, dataset): value} (zeroshot, ensemble, weighted F1)."""
    long = pd.DataFrame([{"model": m, "dataset": d, "task": "zeroshot", "prompt_mode": "ensemble",
                          "metric": "weighted_f1", "value": v, "ci_low": v - 0.05, "ci_high": v + 0.05,
                          "source": "measured"} for (m, d), v in values.items()])
    return tables.comparison_table(long, "weighted_f1", "zeroshot", "ensemble", ["a", "b"], include_reported=False)


def _comparisons(*rows) -> pd.DataFrame:
    return pd.DataFrame([{"model_a": a, "model_b": b, "dataset": d, "task": "zeroshot", "prompt_mode": "ensemble",
                          "metric": "weighted_f1", "diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": 32,
                          "significant": sig} for a, b, d, sig in rows])


def test_tied_with_best_marks_only_non_significant_gaps_to_the_best():
    table = _table({("x", "a"): 0.9, ("y", "a"): 0.85, ("z", "a"): 0.5, ("x", "b"): 0.4, ("y", "b"): 0.7})
    comparisons = _comparisons(("x", "y", "a", False), ("z", "x", "a", True), ("y", "x", "b", False))
    tied = tables.tied_with_best(table, comparisons, "weighted_f1", "zeroshot", "ensemble")
    assert tied.at[("y", "measured"), "a"]  # 0.85 vs the best 0.9: not significant
    assert not tied.at[("z", "measured"), "a"]  # significantly worse
    assert not tied.at[("x", "measured"), "a"]  # the best itself is bold, not tied
    assert tied.at[("x", "measured"), "b"] and not tied.at[("y", "measured"), "b"]  # order of the pair is free
    assert not tied["Avg"].any()
    lower = tables.tied_with_best(table, comparisons, "weighted_f1", "zeroshot", "ensemble", lower=True)
    # the best is now z: x-z is significant, and y-z was never compared (no shared items): neither is tied
    assert not lower["a"].any()


def test_ties_count_only_comparisons_of_the_cells_shown():
    table = _table({("x", "a"): 0.9, ("y", "a"): 0.85})
    shown = pd.DataFrame({"cell_id": ["cx", "cy"]})
    of_shown = _comparisons(("x", "y", "a", False)).assign(cell_a="cx", cell_b="cy")
    other_protocol = _comparisons(("x", "y", "a", False)).assign(cell_a="cx-custom-prompts", cell_b="cy-custom-prompts")
    assert tables.tied_with_best(table, tables.between(of_shown, shown), "weighted_f1", "zeroshot", "ensemble"
                                 ).at[("y", "measured"), "a"]
    kept = tables.between(other_protocol, shown)  # the same models, but other cells: not the numbers on screen
    assert kept.empty
    assert not tables.tied_with_best(table, kept, "weighted_f1", "zeroshot", "ensemble").any().any()
    assert len(tables.between(_comparisons(("x", "y", "a", False)), shown)) == 1  # no cell ids stored: kept


def test_html_highlights_the_chosen_model_and_marks_ties():
    table = _table({("x", "a"): 0.9, ("y", "a"): 0.85, ("x", "b"): 0.4, ("y", "b"): 0.7})
    tied = tables.tied_with_best(table, _comparisons(("x", "y", "a", False)), "weighted_f1", "zeroshot", "ensemble")
    html = tables.to_html(table, highlight="y", tied=tied)
    rows = html.split("<tr")[2:]
    (y_row,) = [r for r in rows if ">y</td>" in r]
    assert 'class="measured highlight"' in y_row and tables.HIGHLIGHT in y_row
    assert '0.850 [0.80, 0.90] <span class="tied"' in y_row
    assert html.count('class="tied"') == 1 and html.count("highlight") == 1


def open_link(monkeypatch, db, **params):
    """The app opened from a link carrying ``params`` in its query string."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr("sys.argv", ["app.py", "--db", str(db)])
    monkeypatch.delenv("PATHBOARD_DB", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _two_runs(path):
    """make_db, then a second run that re-scores plip (ensemble) to 0.700."""
    make_db(path)
    store = Store(path)
    run_id = store.start_run(command="pathboard run --models plip", device="cpu", precision="fp32")
    cell = {"model": "plip", "dataset": "crc-val-he-7k", "task": "zeroshot", "prompt_mode": "ensemble",
            "weights_fingerprint": "abcdef0123456789abcdef", "prompt_hash": "def", "manifest_hash": "ghi",
            "n_items": 32, "n_failed": 0, "device": "cpu", "precision": "fp32"}
    store.add_cell(run_id, cell, [Metric("weighted_f1", 0.700, 0.650, 0.750, 32)])
    store.finish_run(run_id, "finished", 3, ["retrieval on crc-val-he-7k: it has no captions"],
                     {"crc-val-he-7k": {"ADI/x.tif": "UnidentifiedImageError: cannot identify image file"}})
    return path, run_id


def test_runs_view_lists_runs_and_one_runs_record(monkeypatch, tmp_path):
    db, second = _two_runs(tmp_path / "r.duckdb")
    runs = tables.load_runs(db)
    assert list(runs["run_id"])[0] == second and list(runs["failed_files"]) == [1, 0]
    at = open_link(monkeypatch, db, view="Runs")
    assert at.sidebar.radio(key="view").value == "Runs"
    (runs_frame, *rest) = [d.value for d in at.dataframe]
    assert list(runs_frame["run_id"]) == list(runs["run_id"]) and list(runs_frame["cells"]) == [1, 4]
    assert at.code[0].value == "pathboard run --models plip"
    page = " ".join(m.value for m in at.markdown)
    assert "retrieval on crc-val-he-7k: it has no captions" in page
    assert any("UnidentifiedImageError" in str(d.value["reason"].tolist()) for d in at.dataframe[1:])
    assert at.query_params["view"] == "Runs" and at.query_params["detail"] == second


def test_run_filter_shows_one_runs_numbers(monkeypatch, tmp_path):
    db, second = _two_runs(tmp_path / "r.duckdb")
    at = app_test(monkeypatch, argv_db=db)
    assert "0.700 [0.65, 0.75]" in table_html(at)  # the newest result of every cell
    first = [r for r in tables.load_runs(db)["run_id"] if r != second][0]
    at.sidebar.selectbox(key="run").set_value(first).run()
    html = table_html(at)
    assert "0.655 [0.62, 0.69]" in html and "0.700" not in html
    at.sidebar.selectbox(key="run").set_value(second).run()
    html = table_html(at)
    assert "0.700 [0.65, 0.75]" in html and "quiltnet" not in html


def test_a_link_reopens_the_same_view(monkeypatch, tmp_path):
    db = make_db(tmp_path / "r.duckdb")
    at = open_link(monkeypatch, db, metric="cohen_kappa", mode="single", reported="0", highlight="plip")
    assert at.selectbox(key="metric").value == "cohen_kappa" and at.radio(key="mode").value == "single"
    assert at.checkbox(key="reported").value is False and at.sidebar.selectbox(key="highlight").value == "plip"
    html = table_html(at)
    assert "(reported)" not in html and '<tr class="measured highlight"' in html
    assert "0.410 [0.36, 0.46]" in html  # plip's single-mode kappa
    at.radio(key="mode").set_value("ensemble").run()  # a change through the UI goes back into the URL
    assert at.query_params["mode"] == "ensemble" and at.query_params["metric"] == "cohen_kappa"
    assert at.query_params["highlight"] == "plip" and at.query_params["reported"] == "0"


def test_a_run_that_writes_the_database_shows_on_the_next_rerun(monkeypatch, tmp_path):
    """The app reads the database once per version of the file: a new result is shown on the next rerun,
    without restarting the server or clearing a cache."""

    db = make_db(tmp_path / "pb.duckdb")
    at = app_test(monkeypatch, argv_db=db)
    assert "late-model" not in table_html(at)
    store = Store(db)
    run_id = store.start_run(command="test", device="cpu", precision="fp32")
    store.add_cell(run_id, {"model": "late-model", "dataset": "crc-val-he-7k", "task": "zeroshot",
                            "prompt_mode": "ensemble", "weights_fingerprint": "0123", "prompt_hash": "def",
                            "manifest_hash": "ghi", "n_items": 32, "n_failed": 0, "device": "cpu",
                            "precision": "fp32"}, [Metric("weighted_f1", 0.777, 0.7, 0.8, 32)])
    at.run()
    assert not at.exception
    assert ">late-model</td>" in table_html(at) and "0.777 [0.70, 0.80]" in table_html(at)
