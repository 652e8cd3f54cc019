"""The leaderboard: the table logic of pathboard.leaderboard.tables and the Streamlit app."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from pathboard.core.errors import PathboardError
from pathboard.core.metrics import Metric
from pathboard.core.store import Store
from pathboard.leaderboard import tables

APP = Path(tables.__file__).with_name("app.py")

# The published table (weighted F1, prompt ensemble, zero-shot), Avg column included.
PUBLISHED = {
    "VirCLIP": (0.762, 0.439, 0.909, 0.703),
    "ConText-L-14-336px": (0.738, 0.668, 0.748, 0.718),
    "LIPBaC-B-16": (0.693, 0.451, 0.623, 0.589),
    "ConText-B-32-Knowledge": (0.647, 0.485, 0.767, 0.633),
    "KEP(Quilt)ViT-B-32": (0.421, 0.526, 0.609, 0.519),
    "PathgenCLIP": (0.606, 0.506, 0.639, 0.584),
    "KEP(Quilt)": (0.527, 0.577, 0.656, 0.587),
    "CONCH": (0.608, 0.412, 0.774, 0.598),
}
PUBLISHED_COLUMNS = ["wsss4luad", "sicapv2", "crc-val-he-7k"]

# (model, mode) -> weighted_f1 (value, lo, hi) and cohen_kappa value on crc-val-he-7k.
MEASURED = {
    ("quiltnet-b32", "ensemble"): ((0.612, 0.581, 0.642), 0.55),
    ("quiltnet-b32", "single"): ((0.571, 0.538, 0.603), 0.49),
    ("plip", "ensemble"): ((0.655, 0.623, 0.688), 0.60),
    ("plip", "single"): ((0.498, 0.462, 0.531), 0.41),
}


def make_db(path: Path) -> Path:
    """Two measured models on crc-val-he-7k, both prompt modes, without any model."""
    store = Store(path)
    run_id = store.start_run(command="test", device="cpu", precision="fp32")
    for (model, mode), ((value, lo, hi), kappa) in MEASURED.items():
        cell = {"model": model, "dataset": "crc-val-he-7k", "task": "zeroshot", "prompt_mode": mode,
                "weights_fingerprint": "abcdef0123456789abcdef", "prompt_hash": "def", "manifest_hash": "ghi",
                "n_items": 32, "n_failed": 0, "device": "cpu", "precision": "fp32"}
        store.add_cell(run_id, cell, [Metric("weighted_f1", value, lo, hi, 32),
                                      Metric("cohen_kappa", kappa, kappa - 0.05, kappa + 0.05, 32),
                                      Metric("recall/TUM", value + 0.1, value, value + 0.2, 32)])
    return path


@pytest.fixture()
def db(tmp_path) -> Path:
    return make_db(tmp_path / "results.duckdb")


@pytest.fixture()
def long(db) -> pd.DataFrame:
    return pd.concat([tables.load_measured(db), tables.load_reported()], ignore_index=True)


def rows(**cells) -> pd.DataFrame:
    """A measured long frame from {(model, dataset): value} (ensemble, zeroshot, weighted_f1)."""
    return pd.DataFrame([{"model": m, "dataset": d, "task": "zeroshot", "prompt_mode": "ensemble",
                          "metric": "weighted_f1", "value": v, "ci_low": v - 0.05, "ci_high": v + 0.05,
                          "source": "measured"} for (m, d), v in cells["cells"].items()])


# --- the shipped published table ---------------------------------------------------------------

def test_reported_csv_holds_the_published_cells_and_no_avg():
    rep = tables.load_reported()
    assert len(rep) == 3 * len(PUBLISHED)
    assert set(rep["dataset"]) == set(PUBLISHED_COLUMNS)  # no "Avg" column stored
    assert set(rep["task"]) == {"zeroshot"} and set(rep["prompt_mode"]) == {"ensemble"}
    assert set(rep["metric"]) == {"weighted_f1"}
    crc = rep[rep["dataset"] == "crc-val-he-7k"]
    assert set(crc["published_as"]) == {"CRC-100K"}
    assert crc["source_note"].str.contains("CRC-VAL-HE-7K").all()
    for model, published in PUBLISHED.items():
        got = rep[rep["model"] == model].set_index("dataset")["value"]
        assert [got[d] for d in PUBLISHED_COLUMNS] == list(published[:3])


@pytest.mark.parametrize("model", PUBLISHED)
def test_computed_avg_of_reported_rows_equals_published_avg(model):
    table = tables.comparison_table(tables.load_reported())
    assert list(table["value"].columns) == PUBLISHED_COLUMNS + ["Avg"]
    avg = table["value"].at[(model + " (reported)", "reported"), "Avg"]
    assert avg == pytest.approx(PUBLISHED[model][3], abs=0.001)


# --- the comparison table -----------------------------------------------------------------------

def test_pivot_rows_are_models_columns_are_datasets_plus_avg(long):
    table = tables.comparison_table(long, include_reported=False)
    assert list(table.index) == [("plip", "measured"), ("quiltnet-b32", "measured")]  # best Avg first
    assert list(table["value"].columns) == ["crc-val-he-7k", "Avg"]
    assert table["value"].at[("quiltnet-b32", "measured"), "crc-val-he-7k"] == pytest.approx(0.612)
    assert table["ci_low"].at[("quiltnet-b32", "measured"), "crc-val-he-7k"] == pytest.approx(0.581)
    assert table["ci_high"].at[("plip", "measured"), "crc-val-he-7k"] == pytest.approx(0.688)
    assert table["value"].at[("plip", "measured"), "Avg"] == pytest.approx(0.655)


def test_measured_and_reported_rows_share_dataset_columns_and_stay_distinct(long):
    table = tables.comparison_table(long)
    assert list(table["value"].columns) == PUBLISHED_COLUMNS + ["Avg"]
    sources = table.index.get_level_values("source")
    assert list(sources[:2]) == ["measured", "measured"] and set(sources[2:]) == {"reported"}
    assert list(table.index[:2]) == [("plip", "measured"), ("quiltnet-b32", "measured")]  # no Avg: by value
    models = table.index.get_level_values("model")
    assert "VirCLIP (reported)" in models and "plip" in models and "VirCLIP" not in models
    assert table["value"].at[("plip", "measured"), "crc-val-he-7k"] == pytest.approx(0.655)
    assert table["value"].at[("VirCLIP (reported)", "reported"), "crc-val-he-7k"] == pytest.approx(0.909)
    # plip has no wsss4luad/sicapv2 value, so no Avg; every reported row has all three
    assert math.isnan(table["value"].at[("plip", "measured"), "Avg"])
    assert table["value"].loc[table.index.get_level_values("source") == "reported", "Avg"].notna().all()


def test_avg_only_when_every_shown_dataset_has_a_value():
    df = rows(cells={("a", "d1"): 0.5, ("a", "d2"): 0.7, ("b", "d1"): 0.9})
    table = tables.comparison_table(df)
    assert table["value"].at[("a", "measured"), "Avg"] == pytest.approx(0.6)
    assert math.isnan(table["value"].at[("b", "measured"), "Avg"])
    only_d1 = tables.comparison_table(df, datasets=["d1"])
    assert list(only_d1["value"].columns) == ["d1", "Avg"]
    assert only_d1["value"].at[("b", "measured"), "Avg"] == pytest.approx(0.9)
    assert only_d1["value"].at[("a", "measured"), "Avg"] == pytest.approx(0.5)


def test_mode_toggle_selects_the_prompt_mode(long):
    ensemble = tables.comparison_table(long, mode="ensemble", include_reported=False)["value"]
    single = tables.comparison_table(long, mode="single", include_reported=False)["value"]
    assert ensemble.at[("quiltnet-b32", "measured"), "crc-val-he-7k"] == pytest.approx(0.612)
    assert single.at[("quiltnet-b32", "measured"), "crc-val-he-7k"] == pytest.approx(0.571)
    assert list(single.index) == [("quiltnet-b32", "measured"), ("plip", "measured")]  # re-ranked


def test_rows_without_prompt_mode_show_in_either_mode():
    df = rows(cells={("probe", "d1"): 0.8}).assign(prompt_mode=None, task="linear")
    for mode in tables.MODES:
        table = tables.comparison_table(df, task="linear", mode=mode)
        assert table["value"].at[("probe", "measured"), "d1"] == pytest.approx(0.8)


@pytest.mark.parametrize("change", [{"mode": "single"}, {"metric": "cohen_kappa"}, {"task": "linear"},
                                    {"include_reported": False}])
def test_reported_rows_only_where_metric_task_and_mode_match(long, change):
    assert "reported" in tables.comparison_table(long).index.get_level_values("source")
    table = tables.comparison_table(long, **change)
    assert "reported" not in table.index.get_level_values("source")


def test_best_per_column_is_the_max_for_kappa_too(long):
    table = tables.comparison_table(long, metric="cohen_kappa")
    best = tables.best_per_column(table)
    assert best.at[("plip", "measured"), "crc-val-he-7k"]
    assert not best.at[("quiltnet-b32", "measured"), "crc-val-he-7k"]
    df = rows(cells={("a", "d1"): -0.2, ("b", "d1"): -0.1, ("c", "d1"): -0.1, ("a", "d2"): 0.3})
    best = tables.best_per_column(tables.comparison_table(df))
    assert best.at[("b", "measured"), "d1"] and best.at[("c", "measured"), "d1"]  # ties all win
    assert not best.at[("a", "measured"), "d1"]
    assert best.at[("a", "measured"), "d2"] and not best.at[("b", "measured"), "d2"]  # blanks never win


def test_best_per_column_spans_reported_rows(long):
    best = tables.best_per_column(tables.comparison_table(long))
    assert best.at[("VirCLIP (reported)", "reported"), "crc-val-he-7k"]
    assert best.at[("ConText-L-14-336px (reported)", "reported"), "Avg"]
    assert best.sum().tolist() == [1, 1, 1, 1]


def test_format_cell():
    assert tables.format_cell(0.7623, 0.7012, 0.8149) == "0.762 [0.70, 0.81]"
    assert tables.format_cell(0.909, float("nan"), float("nan")) == "0.909"
    assert tables.format_cell(float("nan"), float("nan"), float("nan")) == "–"


def test_html_bolds_the_best_and_marks_reported_rows(long):
    html = tables.to_html(tables.comparison_table(long, include_reported=False))
    assert "<b>0.655 [0.62, 0.69]</b>" in html
    assert "0.612 [0.58, 0.64]" in html and "<b>0.612" not in html
    assert "reported" not in html
    html = tables.to_html(tables.comparison_table(long), {"crc-val-he-7k": "CRC-VAL-HE-7K"})
    assert "<b>0.909</b>" in html and "<b>0.718</b>" in html  # VirCLIP on CRC, ConText-L Avg
    assert html.count('<tr class="reported"') == len(PUBLISHED)
    assert html.count('<tr class="measured"') == 2
    assert "VirCLIP (reported)" in html and 'title="CRC-VAL-HE-7K"' in html
    assert "0.655 [0.62, 0.69]" in html and "<b>0.655" not in html  # VirCLIP beats it now
    assert "–" in html  # measured rows have no wsss4luad value and no Avg


# --- reading the database -----------------------------------------------------------------------

def test_load_measured_errors_and_empty(tmp_path):
    with pytest.raises(PathboardError):
        tables.load_measured(tmp_path / "missing.duckdb")
    store = Store(tmp_path / "empty.duckdb")
    store.start_run(command="test", device="cpu", precision="fp32")
    assert tables.load_measured(store.path).empty


def test_provenance_lists_measured_rows_shown(long):
    prov = tables.provenance(long, "weighted_f1", "zeroshot", "single")
    assert list(prov["model"]) == ["plip", "quiltnet-b32"]
    assert set(prov["weights_fingerprint"]) == {"abcdef012345"}
    assert {"run_id", "created_at", "prompt_hash", "manifest_hash", "device", "precision", "n"} <= set(prov)


def test_per_class_recall(long):
    assert tables.recall_datasets(long, "zeroshot", "ensemble") == ["crc-val-he-7k"]
    recall = tables.per_class_recall(long, "zeroshot", "ensemble", "crc-val-he-7k")
    assert recall.at["plip", "TUM"] == pytest.approx(0.755)


# --- the Streamlit app --------------------------------------------------------------------------

def app_test(monkeypatch, argv_db=None, env_db=None):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(sys, "argv", ["app.py"] + (["--db", str(argv_db)] if argv_db else []))
    if env_db:
        monkeypatch.setenv("PATHBOARD_DB", str(env_db))
    else:
        monkeypatch.delenv("PATHBOARD_DB", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table_html(at) -> str:
    (html,) = [h.value for h in at.html if "pathboard-leaderboard" in h.value]
    return html


def test_app_defaults_and_mode_toggle(monkeypatch, db):
    at = app_test(monkeypatch, argv_db=db)
    assert at.selectbox(key="metric").value == "weighted_f1"
    assert at.selectbox(key="task").value == "zeroshot"
    assert at.radio(key="mode").value == "ensemble"
    assert at.checkbox(key="reported").value is True
    assert at.multiselect(key="datasets").value == PUBLISHED_COLUMNS
    html = table_html(at)
    assert "0.612 [0.58, 0.64]" in html and "0.655 [0.62, 0.69]" in html
    assert "VirCLIP (reported)" in html and "<b>0.909</b>" in html
    assert not at.error and not at.info

    at.radio(key="mode").set_value("single").run()
    assert not at.exception
    html = table_html(at)
    assert "0.571 [0.54, 0.60]" in html and "<b>0.498 [0.46, 0.53]</b>" not in html
    assert "<b>0.571 [0.54, 0.60]</b>" in html
    assert "0.612" not in html and "(reported)" not in html  # reported rows are ensemble only


def test_app_reported_checkbox_and_metric(monkeypatch, db):
    at = app_test(monkeypatch, argv_db=db)
    at.checkbox(key="reported").uncheck().run()
    html = table_html(at)
    assert "(reported)" not in html and "<b>0.655 [0.62, 0.69]</b>" in html
    assert at.multiselect(key="datasets").value == ["crc-val-he-7k"]
    at.selectbox(key="metric").set_value("cohen_kappa").run()
    html = table_html(at)
    assert "<b>0.600 [0.55, 0.65]</b>" in html and "0.550 [0.50, 0.60]" in html


def test_app_db_from_env_and_argv_wins(monkeypatch, db, tmp_path):
    at = app_test(monkeypatch, env_db=db)
    assert "0.612 [0.58, 0.64]" in table_html(at)
    at = app_test(monkeypatch, argv_db=db, env_db=tmp_path / "missing.duckdb")
    assert "0.612 [0.58, 0.64]" in table_html(at) and not at.error


def test_app_missing_db_is_one_line_error(monkeypatch, tmp_path):
    at = app_test(monkeypatch, argv_db=tmp_path / "missing.duckdb")
    assert len(at.error) == 1
    assert "missing.duckdb" in at.error[0].value and "\n" not in at.error[0].value
    assert not at.info  # the error says it all
    assert "VirCLIP (reported)" in table_html(at)  # the published table still shows


def test_app_not_a_database_is_one_line_error(monkeypatch, tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_text("not a database\n" * 100)
    at = app_test(monkeypatch, argv_db=bad)
    assert len(at.error) == 1 and "\n" not in at.error[0].value


def test_app_empty_db_shows_info_and_reported(monkeypatch, tmp_path):
    store = Store(tmp_path / "empty.duckdb")
    store.start_run(command="test", device="cpu", precision="fp32")
    at = app_test(monkeypatch, argv_db=store.path)
    assert len(at.info) == 1 and "No measured results" in at.info[0].value
    assert not at.error
    html = table_html(at)
    assert "VirCLIP (reported)" in html and "measured" not in html


def test_each_task_offers_its_own_metrics():
    df = pd.DataFrame({"task": ["zeroshot", "zeroshot", "zeroshot", "retrieval", "retrieval"],
                       "metric": ["weighted_f1", "recall/ADI", "cohen_kappa", "i2t_recall@1", "mean_recall"]})
    assert tables.task_metrics(df, "zeroshot") == ["weighted_f1", "cohen_kappa"]
    assert tables.task_metrics(df, "retrieval") == ["i2t_recall@1", "mean_recall"]
